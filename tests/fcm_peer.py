"""A loopback FCM HTTP v1 endpoint that checks requests as strictly as FCM documents.

- `POST /v1/projects/{project_id}/messages:send` only, `Authorization: Bearer <token>`
  with a token this peer issued, a JSON body `{"message": {...}, "validate_only"?}`;
  the message has exactly one of token/topic/condition, notification title/body/image
  strings and data values that are all strings
  (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages).
- Answers like FCM: 200 `{"name": "projects/P/messages/N"}`; 400 INVALID_ARGUMENT;
  401 UNAUTHENTICATED; 404 UNREGISTERED for tokens marked unregistered; scripted
  429/503 faults.
- `POST /token` is a Google OAuth2 token endpoint for the service-account JWT-bearer
  grant: it verifies the assertion's signature and audience and issues a token.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.auth import jwt

_MESSAGE_KEYS = frozenset(
    {"name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
    | {"token", "topic", "condition"}
)
_NOTIFICATION_KEYS = frozenset({"title", "body", "image"})
#: google-auth signs service-account assertions for Google's token endpoint, whatever
#: `token_uri` the file names; Google checks exactly this audience.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def fcm_error(status: int, grpc_status: str, message: str, error_code: str | None = None) -> Any:
    """An error body shaped like FCM's (google.rpc.Status with an FcmError detail)."""
    body: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if error_code:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        ]
    return {"error": body}


@dataclass
class FcmPeer:
    """The peer; `messages` holds every accepted message, `statuses` every answer."""

    project_id: str
    public_key_pem: bytes | None = None
    issued_tokens: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    token_requests: int = 0
    _faults: deque[tuple[int, Any]] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    url: str = ""

    def script(self, *faults: tuple[int, Any]) -> None:
        """Answer the next sends with these (status, body) pairs."""
        self._faults.extend(faults)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _answer(self, status: int, body: Any) -> web.Response:
        self.statuses.append(status)
        return web.json_response(body, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != _JWT_BEARER or not isinstance(form.get("assertion"), str):
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        assert self.public_key_pem is not None
        try:
            jwt.decode(
                str(form["assertion"]), certs=self.public_key_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except ValueError as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": str(exc)}, status=400
            )
        token = "ya29." + secrets.token_urlsafe(16)
        self.issued_tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        )

    def _invalid(self, reason: str) -> web.Response:
        return self._answer(400, fcm_error(400, "INVALID_ARGUMENT", reason, "INVALID_ARGUMENT"))

    async def _send(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.issued_tokens:
            return self._answer(
                401, fcm_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
            )
        if request.match_info["project"] != self.project_id:
            return self._answer(404, fcm_error(404, "NOT_FOUND", "Requested entity was not found."))
        if request.content_type != "application/json":
            return self._invalid("Content-Type must be application/json")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._invalid("Invalid JSON payload received.")
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            return self._invalid("Request must have a message object.")
        if set(body) - {"message", "validate_only"}:
            return self._invalid(
                f"Unknown name(s): {sorted(set(body) - {'message', 'validate_only'})}"
            )
        if "validate_only" in body and not isinstance(body["validate_only"], bool):
            return self._invalid("validate_only must be a boolean")
        message = body["message"]
        if set(message) - _MESSAGE_KEYS:
            return self._invalid(
                f"Unknown message field(s): {sorted(set(message) - _MESSAGE_KEYS)}"
            )
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1 or not isinstance(message[targets[0]], str):
            return self._invalid("Exactly one of token, topic or condition must be set.")
        notification = message.get("notification", {})
        if not isinstance(notification, dict) or set(notification) - _NOTIFICATION_KEYS:
            return self._invalid("notification has unknown fields")
        if not all(isinstance(v, str) for v in notification.values()):
            return self._invalid("notification title, body and image must be strings")
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            return self._invalid("data must map strings to strings")
        if self._faults:
            status, fault = self._faults.popleft()
            return self._answer(status, fault)
        if message.get("token") in self.unregistered:
            return self._answer(
                404, fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
            )
        self.messages.append(message)
        name = f"projects/{self.project_id}/messages/{len(self.messages)}"
        return self._answer(200, {"name": name})
