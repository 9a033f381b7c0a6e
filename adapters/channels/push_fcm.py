"""Push notifications through FCM HTTP v1, using pyfcm in a worker thread.

FCM cannot be asked what it delivered (a message's `name` comes only in the answer), so
a timeout after the request left cannot be reconciled. Each notification instead
carries a collapse identity derived from our message id — Android's notification `tag`,
APNs' `apns-collapse-id`, Web Push's `Topic` — so a second attempt replaces the first on
the device instead of showing twice, and a send may be retried after such a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import google.auth.exceptions
import google.auth.transport.requests
import requests
from pyfcm import FCMNotification
from pyfcm.errors import FCMError
from requests.adapters import HTTPAdapter

from omniconsole.adapters.channels.resilience import (
    CircuitBreaker,
    DeliveryGuard,
    HealthState,
    LimiterFactory,
    RetryPolicy,
    Sleep,
    is_transient_status,
    pace_guards,
)
from omniconsole.adapters.channels.settings import FcmSettings
from omniconsole.domain.channels import Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

__all__ = ["FcmPushAdapter", "classify_fcm_response", "collapse_id"]

_log = logging.getLogger(__name__)


class _FcmClient(FCMNotification):  # type: ignore[misc]
    """pyfcm's client with the three behaviours we cannot accept changed.

    - one POST per call: pyfcm sleeps in-thread on `Retry-After` and recurses, which
      would pin a worker thread; our `DeliveryGuard` retries instead;
    - the endpoint is `{api_base_url}/v1/projects/{project_id}/messages:send` with
      *our* project id (pyfcm prefers the credentials' own);
    - every `requests.Session` it makes (one per thread) is remembered and closed in
      `close()`, and token refreshes use a session that is closed straight away.
    """

    def __init__(self, settings: FcmSettings, credentials: Any | None) -> None:
        super().__init__(
            service_account_file=None if credentials else str(settings.credentials_file),
            project_id=settings.project_id,
            credentials=credentials,
            # pyfcm's default adapter retries 502/503 with backoff for minutes.
            adapter=HTTPAdapter(max_retries=0),
        )
        self.FCM_END_POINT_BASE = f"{settings.api_base_url}/v1/projects"
        self._fcm_end_point = f"{self.FCM_END_POINT_BASE}/{settings.project_id}/messages:send"
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    @property
    def requests_session(self) -> requests.Session:
        session: requests.Session = super().requests_session
        with self._sessions_lock:
            if session not in self._sessions:
                self._sessions.append(session)
        return session

    def _get_access_token(self) -> str:
        if self.credentials is None:
            self._initialize_credentials()
        with requests.Session() as session:
            self.credentials.refresh(google.auth.transport.requests.Request(session))
        return str(self.credentials.token)

    def send_request(self, payload: bytes | None = None, timeout: float | None = None) -> Any:
        response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        if self._is_access_token_expired(response):
            self.thread_local.token_expiry = 0
            response.close()
            response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        return response

    def post(self, timeout: float, **notify: Any) -> tuple[int, Any]:
        """Send one message; returns the HTTP status and the decoded JSON body (or None)."""
        response = self.send_request(self.parse_payload(**notify), timeout)
        with response:
            try:
                body = response.json()
            except ValueError:
                body = None
            return int(response.status_code), body

    def close(self) -> None:
        """Close every session any worker thread opened."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def collapse_id(message_id: str) -> str:
    """The device-side identity of one message: 32 hex characters (APNs allows 64 bytes,
    Web Push topics 32 URL-safe characters)."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


def classify_fcm_response(status: int, body: Any) -> DeliveryResult:
    """Map an FCM HTTP v1 answer to a DeliveryResult.

    UNREGISTERED (or any 404) is permanent `unregistered`; INVALID_ARGUMENT and other
    4xx are permanent; 429 and 5xx are transient.
    """
    if status == 200 and isinstance(body, dict) and isinstance(body.get("name"), str):
        return DeliveryResult(ok=True, provider_id=body["name"])
    error = body.get("error", {}) if isinstance(body, dict) else {}
    error = error if isinstance(error, dict) else {}
    fcm_code = ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            fcm_code = str(detail["errorCode"])
    code = (fcm_code or str(error.get("status") or f"http_{status}")).lower()
    message = str(error.get("message", ""))
    if status == 200:
        return DeliveryResult(ok=False, error_code="bad_response", detail="no message name")
    if code == "unregistered" or status == 404:
        return DeliveryResult(ok=False, error_code="unregistered", permanent=True, detail=message)
    if is_transient_status(status):
        return DeliveryResult(ok=False, error_code=code, detail=message)
    return DeliveryResult(ok=False, error_code=code, permanent=True, detail=message)


class FcmPushAdapter:
    """Delivers `push` messages to one device token with FCM HTTP v1.

    pyfcm is synchronous, so each attempt runs in a worker thread
    (`asyncio.to_thread`) and the event loop never blocks on the network.
    """

    name: ClassVar[str] = "fcm"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.PUSH})
    #: FCM's default quota is 600,000 messages/minute per project.
    rate_per_second: ClassVar[float] = 10_000.0

    def __init__(
        self,
        settings: FcmSettings,
        *,
        credentials: Any | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        rate_per_second: float | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """`credentials` (google-auth) overrides the service-account file in `settings`."""
        self._settings = settings
        self._client = _FcmClient(settings, credentials)
        self._guard = DeliveryGuard(
            rate_per_second=self.rate_per_second if rate_per_second is None else rate_per_second,
            retry=retry,
            breaker=breaker,
            sleep=sleep,
            rand=rand,
        )

    def pace_with(self, make: LimiterFactory) -> None:
        """Pace the provider calls with limiters from `make` (a `PacedAdapter`)."""
        pace_guards(self.name, {Channel.PUSH: self._guard}, make)

    def health(self) -> dict[Channel, HealthState]:
        """Circuit state per channel, for the console."""
        return {Channel.PUSH: self._guard.state}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one notification; transient failures are retried inside."""
        if message.channel is not Channel.PUSH:
            raise ValueError(f"{self.name} cannot send on {message.channel}")
        token = message.recipient.push_token
        if not token:
            return DeliveryResult(
                ok=False, error_code="no_address", permanent=True, detail="no push token"
            )
        notify: dict[str, Any] = {
            "fcm_token": token,
            "notification_title": message.subject or None,
            "notification_body": message.text,
            # FCM requires every data value to be a string.
            "data_payload": {
                "message_id": message.message_id,
                "journey": message.journey,
                "step": message.step,
                "category": message.category.value,
            },
            # a repeat of this message replaces it on the device (module docstring)
            "android_config": {"notification": {"tag": collapse_id(message.message_id)}},
            "apns_config": {"headers": {"apns-collapse-id": collapse_id(message.message_id)}},
            "webpush_config": {"headers": {"Topic": collapse_id(message.message_id)}},
        }
        return await self._guard.run(lambda: self._attempt(message, notify))

    async def _attempt(self, message: OutboundMessage, notify: dict[str, Any]) -> DeliveryResult:
        try:
            status, body = await asyncio.to_thread(
                self._client.post, self._settings.timeout, **notify
            )
        except requests.Timeout:
            # before or after the request left: either way a retry collapses onto it
            result = DeliveryResult(ok=False, error_code="timeout", detail="no answer in time")
        except (requests.ConnectionError, OSError) as exc:
            result = DeliveryResult(ok=False, error_code="connection", detail=type(exc).__name__)
        except google.auth.exceptions.GoogleAuthError as exc:
            # A refused grant (bad key, revoked account) will not fix itself; a token
            # endpoint outage will, and google-auth says which it is.
            result = DeliveryResult(
                ok=False,
                error_code="auth_token",
                permanent=not (
                    isinstance(exc, google.auth.exceptions.TransportError)
                    or getattr(exc, "retryable", False)
                ),
                detail=type(exc).__name__,
            )
        except (FCMError, requests.RequestException) as exc:
            # Malformed payload or credentials file: retrying sends the same thing.
            result = DeliveryResult(
                ok=False, error_code="fcm_client", permanent=True, detail=str(exc)[:200]
            )
        else:
            result = classify_fcm_response(status, body)
        if not result.ok:
            _log.info("fcm send %s failed: %s", message.message_id, result.error_code)
        return result

    async def aclose(self) -> None:
        """Close the HTTP sessions opened by worker threads."""
        await asyncio.to_thread(self._client.close)
