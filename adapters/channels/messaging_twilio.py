"""SMS, WhatsApp and RCS through Twilio's Messages API, using the official async client.

A send that times out after the request left is *ambiguous*: Twilio may have queued
it. It is never retried blindly; the outbox first asks Twilio (`reconcile`) whether a
message with this text went to this number since the attempt started, in the Messages
list — Twilio keeps the body, the recipient and the sender, not our ids (the status
callback URL with our ids is not part of the resource). A timeout while connecting and
a refused connection are plain transient failures: nothing left.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

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
from omniconsole.adapters.channels.settings import DEFAULT_TWILIO_API_BASE_URL, TwilioSettings
from omniconsole.domain.channels import Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

__all__ = [
    "BaseUrlAsyncHttpClient",
    "TwilioMessagingAdapter",
    "classify_transport_error",
    "classify_twilio_error",
]

_log = logging.getLogger(__name__)

#: Twilio error 21610: "Attempt to send to unsubscribed recipient" (the customer sent STOP).
OPTED_OUT_CODE = 21610
#: Twilio error 20429: "Too Many Requests".
TOO_MANY_REQUESTS_CODE = 20429
#: how many of our sends' Twilio sids are remembered, so a reconciliation never takes
#: a message another send of ours already accounts for
_SIDS_KEPT = 10_000
#: Twilio's clock and ours may disagree; `date_created` has whole seconds
_CLOCK_SKEW = timedelta(seconds=60)


def classify_transport_error(exc: BaseException) -> DeliveryResult:
    """A send that got no HTTP answer: transient when nothing left, else ambiguous."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return DeliveryResult(ok=False, error_code="connection", detail=repr(exc))
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryResult(ok=False, error_code="connection", detail=repr(exc))
    code = "timeout" if isinstance(exc, TimeoutError) else "no_answer"
    return DeliveryResult(
        ok=False,
        error_code=code,
        ambiguous=True,
        detail=f"the request left but no answer came: {exc!r}",
    )


class BaseUrlAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, sending requests for `*.twilio.com` to `base_url` instead.

    The SDK builds absolute `https://api.twilio.com/...` URLs (or edge/region variants);
    rewriting at the transport keeps every other SDK behaviour (auth, headers, form
    encoding, error parsing) exactly as in production.
    """

    def __init__(
        self, base_url: str, *, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        super().__init__(pool_connections=False)
        self.base_url = base_url.rstrip("/")
        # Our own pooled session (made on first use, inside the running loop) with split
        # timeouts: a timeout while connecting raises aiohttp's ConnectionTimeoutError
        # (nothing left); any later one is ambiguous.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.session: aiohttp.ClientSession | None = None

    def rewrite(self, url: str) -> str:
        """`url` with a Twilio origin replaced by `base_url`."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == "twilio.com" or host.endswith(".twilio.com"):
            rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
            return self.base_url + rest
        return url

    async def request(
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """The SDK's request, sent to `base_url`, with our session's timeouts.

        Written out rather than delegated: the SDK passes `timeout=None` to aiohttp,
        which switches the session's timeouts off. Basic credentials become an
        `Authorization` header here because the SDK's own path uses
        `aiohttp.BasicAuth`, deprecated since aiohttp 3.12.
        """
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self._timeout)
        headers = dict(headers or {})
        if auth is not None:
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        request_timeout = self._timeout
        if timeout is not None and timeout > 0:
            request_timeout = aiohttp.ClientTimeout(
                total=timeout, sock_connect=self._timeout.sock_connect
            )
        async with self.session.request(
            method.upper(),
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            timeout=request_timeout,
            allow_redirects=allow_redirects,
        ) as response:
            return Response(response.status, await response.text(), response.headers)


def classify_twilio_error(status: int, code: int | None, detail: str = "") -> DeliveryResult:
    """Map a Twilio error response to a DeliveryResult.

    21610 is the recipient's opt-out; 429/20429 and 5xx are transient; any other
    4xx is permanent and carries Twilio's error code.
    """
    error_code = str(code) if code else f"http_{status}"
    if code == OPTED_OUT_CODE:
        return DeliveryResult(
            ok=False, error_code=error_code, permanent=True, opted_out=True, detail=detail
        )
    if code == TOO_MANY_REQUESTS_CODE or is_transient_status(status):
        return DeliveryResult(ok=False, error_code=error_code, detail=detail)
    return DeliveryResult(ok=False, error_code=error_code, permanent=True, detail=detail)


class TwilioMessagingAdapter:
    """Delivers `sms`, `whatsapp` and `rcs` messages with Twilio's Messages API.

    Only the channels whose senders are configured are served; the others answer a
    permanent `not_configured` result. Each channel has its own breaker and limiter.
    """

    name: ClassVar[str] = "twilio"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.SMS, Channel.WHATSAPP, Channel.RCS})
    #: Twilio queues above this, but a single long code sends 1 segment/s (US).
    rate_per_second: ClassVar[float] = 1.0

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        status_callback: str | None = None,
        retry: RetryPolicy | None = None,
        breaker_factory: Callable[[], CircuitBreaker] | None = None,
        rate_per_second: float | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._status_callback = status_callback
        rate = self.rate_per_second if rate_per_second is None else rate_per_second
        self._guards = {
            channel: DeliveryGuard(
                rate_per_second=rate,
                retry=retry,
                breaker=breaker_factory() if breaker_factory else None,
                sleep=sleep,
                rand=rand,
            )
            for channel in self.configured_channels
        }
        self._http: BaseUrlAsyncHttpClient | None = None
        self._client: Client | None = None
        self._sids: OrderedDict[str, None] = OrderedDict()  # ours, most recent last

    @property
    def configured_channels(self) -> frozenset[Channel]:
        """The channels whose sender settings are present."""
        s = self._settings
        served = set()
        if s.sms_from or s.messaging_service_sid:
            served.add(Channel.SMS)
        if s.whatsapp_from:
            served.add(Channel.WHATSAPP)
        if s.messaging_service_sid:
            served.add(Channel.RCS)
        return frozenset(served)

    def pace_with(self, make: LimiterFactory) -> None:
        """Pace the provider calls with limiters from `make` (a `PacedAdapter`)."""
        pace_guards(self.name, self._guards, make)

    def health(self) -> dict[Channel, HealthState]:
        """Circuit state per configured channel, for the console."""
        return {channel: guard.state for channel, guard in self._guards.items()}

    def _twilio(self) -> Client:
        # Built lazily: aiohttp wants its session created inside the running loop.
        if self._client is None:
            timeout = self._settings.timeout
            self._http = BaseUrlAsyncHttpClient(
                self._settings.api_base_url or DEFAULT_TWILIO_API_BASE_URL,
                timeout=timeout,
                connect_timeout=min(5.0, timeout),
            )
            self._client = Client(
                self._settings.account_sid,
                self._settings.auth_token.reveal(),
                http_client=self._http,
            )
        return self._client

    def _params(self, message: OutboundMessage) -> dict[str, Any]:
        s = self._settings
        phone = (message.recipient.phone or "").strip()  # a pasted number's CR/LF
        params: dict[str, Any] = {"body": message.text}
        if message.channel is Channel.WHATSAPP:
            params["to"] = f"whatsapp:{phone}"
            params["from_"] = s.whatsapp_from
        elif message.channel is Channel.RCS:
            # RCS senders live in a messaging service; Twilio picks the RCS sender.
            params["to"] = phone
            params["messaging_service_sid"] = s.messaging_service_sid
        elif s.sms_from:
            params["to"] = phone
            params["from_"] = s.sms_from
        else:
            params["to"] = phone
            params["messaging_service_sid"] = s.messaging_service_sid
        if self._status_callback:
            # Our ids ride on the callback URL, so a status maps back without a lookup
            # (Twilio signs the URL as given, query included).
            ids = {
                "message_id": message.message_id,
                "customer": message.recipient.customer,
                "channel": message.channel.value,
                "journey": message.journey,
                "step": message.step,
            }
            params["status_callback"] = f"{self._status_callback}?{urlencode(ids)}"
        return params

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message; transient failures are retried inside."""
        if message.channel not in self.channels:
            raise ValueError(f"{self.name} cannot send on {message.channel}")
        guard = self._guards.get(message.channel)
        if guard is None:
            return DeliveryResult(
                ok=False,
                error_code="not_configured",
                permanent=True,
                detail=f"no Twilio sender configured for {message.channel.value}",
            )
        if not message.recipient.phone:
            return DeliveryResult(
                ok=False, error_code="no_address", permanent=True, detail="no phone number"
            )
        params = self._params(message)
        return await guard.run(lambda: self._attempt(message, params))

    async def _attempt(self, message: OutboundMessage, params: dict[str, Any]) -> DeliveryResult:
        client = self._twilio()
        try:
            # a backstop: the session's own timeouts say whether the request left
            async with asyncio.timeout(self._settings.timeout + 5.0):
                created = await client.messages.create_async(**params)
        except TwilioRestException as exc:
            result = classify_twilio_error(exc.status, exc.code, str(exc.msg))
        except TwilioServiceException as exc:
            result = classify_twilio_error(exc.status, exc.code, str(exc.title))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            result = classify_transport_error(exc)
        except TwilioException as exc:
            # Unknown SDK failure: not retried, so a sent message is never sent twice.
            result = DeliveryResult(
                ok=False, error_code="twilio_error", permanent=True, detail=repr(exc)
            )
        else:
            self._remember(str(created.sid))
            return DeliveryResult(ok=True, provider_id=str(created.sid))
        _log.info(
            "twilio %s send %s failed: %s",
            message.channel.value,
            message.message_id,
            result.error_code,
        )
        return result

    def _remember(self, sid: str) -> None:
        self._sids[sid] = None
        if len(self._sids) > _SIDS_KEPT:
            self._sids.popitem(last=False)

    async def reconcile(self, message: OutboundMessage, since: datetime) -> DeliveryResult | None:
        """Whether Twilio has `message` from an attempt that started at `since`.

        One page of the Messages list to the recipient, newest first: a message from our
        sender (or messaging service) with the same text, created since the attempt
        started, that no other send of ours accounts for. Not filtered by `DateSent`:
        a queued message has none yet.
        """
        if message.channel not in self._guards:
            return None
        params = self._params(message)
        client = self._twilio()
        try:
            async with asyncio.timeout(self._settings.timeout + 5.0):
                page = await client.messages.page_async(to=params["to"], page_size=50)
        except (TwilioException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            return DeliveryResult(ok=False, error_code="reconcile_failed", detail=repr(exc))
        sender = params.get("from_")
        service = params.get("messaging_service_sid")
        earliest = since - _CLOCK_SKEW
        for found in page:
            created = found.date_created
            if (
                found.body == params["body"]
                and found.to == params["to"]
                and (sender is None or found.from_ == sender)
                and (service is None or found.messaging_service_sid == service)
                and str(found.direction or "").startswith("outbound")
                and isinstance(created, datetime)
                and created >= earliest
                and found.sid not in self._sids
            ):
                self._remember(str(found.sid))
                return DeliveryResult(ok=True, provider_id=str(found.sid))
        return None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None
