"""SMS, WhatsApp and RCS through Twilio's Messages API, using the official async client."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from omniconsole.adapters.channels.resilience import (
    CircuitBreaker,
    DeliveryGuard,
    HealthState,
    RetryPolicy,
    Sleep,
    is_transient_status,
)
from omniconsole.adapters.channels.settings import DEFAULT_TWILIO_API_BASE_URL, TwilioSettings
from omniconsole.domain.channels import Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

__all__ = ["BaseUrlAsyncHttpClient", "TwilioMessagingAdapter", "classify_twilio_error"]

_log = logging.getLogger(__name__)

#: Twilio error 21610: "Attempt to send to unsubscribed recipient" (the customer sent STOP).
OPTED_OUT_CODE = 21610
#: Twilio error 20429: "Too Many Requests".
TOO_MANY_REQUESTS_CODE = 20429


class BaseUrlAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, sending requests for `*.twilio.com` to `base_url` instead.

    The SDK builds absolute `https://api.twilio.com/...` URLs (or edge/region variants);
    rewriting at the transport keeps every other SDK behaviour (auth, headers, form
    encoding, error parsing) exactly as in production.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        """`url` with a Twilio origin replaced by `base_url`."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == "twilio.com" or host.endswith(".twilio.com"):
            rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
            return self.base_url + rest
        return url

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """Forward to the SDK's request with the URL rewritten.

        Basic credentials become an `Authorization` header here because the SDK's own
        path uses `aiohttp.BasicAuth`, deprecated since aiohttp 3.12.
        """
        auth = kwargs.pop("auth", None)
        if auth is not None:
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Basic {token}"}
        return await super().request(method, self.rewrite(url), **kwargs)


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

    def health(self) -> dict[Channel, HealthState]:
        """Circuit state per configured channel, for the console."""
        return {channel: guard.state for channel, guard in self._guards.items()}

    def _twilio(self) -> Client:
        # Built lazily: aiohttp wants its session created inside the running loop.
        if self._client is None:
            self._http = BaseUrlAsyncHttpClient(
                self._settings.api_base_url or DEFAULT_TWILIO_API_BASE_URL
            )
            self._client = Client(
                self._settings.account_sid,
                self._settings.auth_token.reveal(),
                http_client=self._http,
            )
        return self._client

    def _params(self, message: OutboundMessage) -> dict[str, Any]:
        s = self._settings
        phone = message.recipient.phone or ""
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
            async with asyncio.timeout(self._settings.timeout):
                created = await client.messages.create_async(**params)
        except TwilioRestException as exc:
            result = classify_twilio_error(exc.status, exc.code, str(exc.msg))
        except TwilioServiceException as exc:
            result = classify_twilio_error(exc.status, exc.code, str(exc.title))
        except TimeoutError:
            result = DeliveryResult(ok=False, error_code="timeout", detail="no answer in time")
        except (aiohttp.ClientError, OSError) as exc:
            result = DeliveryResult(ok=False, error_code="connection", detail=repr(exc))
        except TwilioException as exc:
            # Unknown SDK failure: not retried, so a sent message is never sent twice.
            result = DeliveryResult(
                ok=False, error_code="twilio_error", permanent=True, detail=repr(exc)
            )
        else:
            return DeliveryResult(ok=True, provider_id=str(created.sid))
        _log.info(
            "twilio %s send %s failed: %s",
            message.channel.value,
            message.message_id,
            result.error_code,
        )
        return result

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None
