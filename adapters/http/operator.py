"""The operator route of `omniconsole serve`: agent actions, recorded as events.

    POST /operator/v1/consent
    Authorization: Bearer <OMNICONSOLE_OPERATOR_KEY>
    {"customer": "c-1", "channel": "sms", "action": "opt_out", "agent": "maria",
     "request_id": "…"}

A support agent records an opt-out (or opt-in) that a customer asked for on the phone.
The service turns it into the event the rules already know — `Unsubscribed` or
`Subscribed` for that channel — with `source: operator` and the agent's name, and
answers 200 once it is committed (`{"success": true, "event": {...}, "duplicate": …}`).
`request_id` makes a retry safe: the same id is applied once.

Without `OMNICONSOLE_OPERATOR_KEY` the route answers 403 (agent actions are off); a
missing or wrong key is 401; a bad body is 400 naming the field. The key is compared
in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson
from aiohttp import hdrs, web

from omniconsole.adapters.http.ports import IngestSink
from omniconsole.domain.channels import CHANNEL_NAMES
from omniconsole.domain.events import MAX_ID_CHARS, Event, EventError, check_text
from omniconsole.domain.operator import CONSENT_ACTIONS

__all__ = ["CONSENT_PATH", "add_operator_routes"]

log = logging.getLogger("omniconsole.http.operator")

CONSENT_PATH: Final = "/operator/v1/consent"
_MAX_BODY: Final = 4 << 10


def _answer(status: int, code: str, message: str) -> web.Response:
    body = {"success": False, "code": code, "message": message}
    resp = web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
    if status == 401:
        resp.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="omniconsole operator"'
    return resp


def _text(body: dict[str, Any], field: str, limit: int = MAX_ID_CHARS) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {field!r} must be a non-empty string")
    try:
        check_text(field, value, limit)  # the door's own rule for ids: no control characters
    except EventError as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


class _Operator:
    """The operator handlers; one per application. Runs on the server's event loop."""

    def __init__(self, sink: IngestSink, key: str | None, clock: Callable[[], datetime]) -> None:
        self.sink = sink
        self.key = key
        self.clock = clock

    def _refused(self, request: web.Request) -> web.Response | None:
        if not self.key:
            return _answer(
                403, "disabled", "agent actions are off: OMNICONSOLE_OPERATOR_KEY is not set"
            )
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return _answer(401, "unauthorized", "missing operator key (Authorization: Bearer KEY)")
        if not hmac.compare_digest(given.strip().encode(), self.key.encode()):
            log.warning("operator request with a wrong key from %s", request.remote)
            return _answer(401, "unauthorized", "invalid operator key")
        return None

    async def consent(self, request: web.Request) -> web.Response:
        """`POST /operator/v1/consent`: an agent-recorded opt-out or opt-in."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        raw = await request.content.read(_MAX_BODY + 1)
        if len(raw) > _MAX_BODY:
            return _answer(413, "too_large", "request body over 4 KB")
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            customer = _text(body, "customer")
            channel = _text(body, "channel")
            if channel not in CHANNEL_NAMES and channel != "all":
                raise ValueError(
                    f"field 'channel' must be one of {', '.join(sorted(CHANNEL_NAMES))}, all"
                )
            action = _text(body, "action")
            if action not in CONSENT_ACTIONS:
                raise ValueError("field 'action' must be 'opt_out' or 'opt_in'")
            agent = _text(body, "agent", 100)
            request_id = _text(body, "request_id") if "request_id" in body else uuid.uuid4().hex
        except (orjson.JSONDecodeError, ValueError) as exc:
            return _answer(400, "invalid_request", str(exc))
        event = Event(
            kind="track",
            customer=customer,
            at=self.clock(),
            name=CONSENT_ACTIONS[action],
            properties={"channel": channel, "source": "operator", "agent": agent},
            message_id=f"operator:{request_id}",
        )
        try:
            result = await self.sink.accept([event])
        except Exception:
            log.exception("could not record an agent's %s for one customer", action)
            return _answer(503, "unavailable", "not recorded; try again")
        log.info("agent %s recorded %s of %s for a customer", agent, action, channel)
        answer = {
            "success": True,
            "duplicate": result.duplicates > 0,
            "event": {"name": event.name, "customer": customer, "channel": channel,
                      "agent": agent, "message_id": event.message_id},
        }  # fmt: skip
        return web.Response(body=orjson.dumps(answer), content_type="application/json")


def add_operator_routes(
    app: web.Application, sink: IngestSink, key: str | None, clock: Callable[[], datetime]
) -> None:
    """Add the operator route to `app` (refusing everything when `key` is None)."""
    app.router.add_post(CONSENT_PATH, _Operator(sink, key, clock).consent)
