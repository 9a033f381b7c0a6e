"""TwilioMessagingAdapter against Prism serving Twilio's own OpenAPI description.

Every request goes through the fault proxy (which forwards unless scripted), so each
test can see exactly what the official SDK sent, and Prism validates it: an invalid
request would get 422 and fail the send.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from fault_proxy import FaultProxy, twilio_error

from omniconsole.adapters.channels.messaging_twilio import (
    BaseUrlAsyncHttpClient,
    TwilioMessagingAdapter,
)
from omniconsole.adapters.channels.resilience import CircuitBreaker, RetryPolicy
from omniconsole.adapters.channels.settings import Secret, TwilioSettings
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import OutboundMessage, Recipient

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-not-real"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
CALLBACK = "https://omni.example.com/webhooks/twilio/status"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def settings(base_url: str, **overrides: object) -> TwilioSettings:
    fields: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": Secret(AUTH_TOKEN),
        "sms_from": "+15005550006",
        "whatsapp_from": "whatsapp:+14155238886",
        "messaging_service_sid": SERVICE_SID,
        "api_base_url": base_url,
    }
    fields.update(overrides)
    return TwilioSettings(**fields)  # type: ignore[arg-type]


def message(channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage(
        message_id="m-1",
        channel=channel,
        category=Category.LIFECYCLE,
        journey="onboarding",
        step="nudge_day3",
        recipient=Recipient(customer="c-1", phone="+14155550101", first_name="Ana"),
        subject="",
        text="Hi Ana, one step left. Reply STOP to opt out.",
    )


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest_asyncio.fixture
async def made_adapters() -> AsyncIterator[list[TwilioMessagingAdapter]]:
    """Adapters made by `adapter_for`, closed after the test whatever happened."""
    made: list[TwilioMessagingAdapter] = []
    yield made
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
def adapter_for(
    made_adapters: list[TwilioMessagingAdapter],
) -> Callable[..., TwilioMessagingAdapter]:
    def make(proxy: FaultProxy, **kwargs: Any) -> TwilioMessagingAdapter:
        kwargs.setdefault("rate_per_second", 0)
        kwargs.setdefault("status_callback", CALLBACK)
        base = kwargs.pop("settings", None) or settings(proxy.url)
        adapter = TwilioMessagingAdapter(base, **kwargs)
        made_adapters.append(adapter)
        return adapter

    return make


def test_base_url_client_rewrites_only_twilio_hosts() -> None:
    client = BaseUrlAsyncHttpClient("http://127.0.0.1:9")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts.json")
        == "http://127.0.0.1:9/2010-04-01/Accounts.json"
    )
    assert client.rewrite("https://api.dublin.ie1.twilio.com/x?y=1") == "http://127.0.0.1:9/x?y=1"
    assert client.rewrite("https://example.com/x") == "https://example.com/x"


@pytest.mark.asyncio
async def test_sms_is_accepted_by_twilios_schema(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    adapter = adapter_for(twilio_proxy)
    msg = message(Channel.SMS)
    result = await adapter.send(msg)

    assert result.ok, result
    assert result.provider_id and result.provider_id.startswith("SM")
    [seen] = twilio_proxy.seen
    assert (seen.method, seen.path, seen.status) == ("POST", MESSAGES_PATH, 201)
    assert seen.form["To"] == ["+14155550101"]
    assert seen.form["From"] == ["+15005550006"]
    # the callback carries our ids, so a status maps back to the message without a lookup
    (callback,) = seen.form["StatusCallback"]
    base, _, query = callback.partition("?")
    assert base == CALLBACK
    assert parse_qs(query)["message_id"] == [msg.message_id]
    assert seen.form["Body"] == ["Hi Ana, one step left. Reply STOP to opt out."]
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {expected}"


@pytest.mark.asyncio
async def test_whatsapp_uses_whatsapp_addresses(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    adapter = adapter_for(twilio_proxy)
    result = await adapter.send(message(Channel.WHATSAPP))

    assert result.ok, result
    [seen] = twilio_proxy.seen
    assert seen.status == 201
    assert seen.form["To"] == ["whatsapp:+14155550101"]
    assert seen.form["From"] == ["whatsapp:+14155238886"]


@pytest.mark.asyncio
async def test_rcs_goes_through_the_messaging_service(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    adapter = adapter_for(twilio_proxy)
    result = await adapter.send(message(Channel.RCS))

    assert result.ok, result
    [seen] = twilio_proxy.seen
    assert seen.status == 201
    assert seen.form["MessagingServiceSid"] == [SERVICE_SID]
    assert "From" not in seen.form


@pytest.mark.asyncio
async def test_no_status_callback_without_public_url(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    adapter = adapter_for(twilio_proxy, status_callback=None)
    assert (await adapter.send(message())).ok
    assert "StatusCallback" not in twilio_proxy.seen[0].form


@pytest.mark.asyncio
async def test_opted_out_recipient_is_permanent_and_flagged(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    twilio_proxy.script(
        twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
    )
    sleep = NoSleep()
    adapter = adapter_for(twilio_proxy, sleep=sleep)
    result = await adapter.send(message())

    assert not result.ok
    assert (result.error_code, result.permanent, result.opted_out) == ("21610", True, True)
    assert sleep.delays == []
    assert len(twilio_proxy.seen) == 1


@pytest.mark.asyncio
async def test_too_many_requests_is_retried_then_succeeds(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    twilio_proxy.script(twilio_error(429, 20429, "Too Many Requests"))
    sleep = NoSleep()
    adapter = adapter_for(twilio_proxy, sleep=sleep, rand=lambda: 1.0)
    result = await adapter.send(message())

    assert result.ok, result
    assert [s.status for s in twilio_proxy.seen] == [429, 201]
    assert sleep.delays == [0.5]


@pytest.mark.asyncio
async def test_server_errors_fail_after_all_retries(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    twilio_proxy.fail_always(twilio_error(500, 20500, "Internal Server Error"))
    sleep = NoSleep()
    adapter = adapter_for(twilio_proxy, sleep=sleep, retry=RetryPolicy(attempts=3))
    result = await adapter.send(message())

    assert not result.ok and not result.permanent
    assert result.error_code == "20500"
    assert len(twilio_proxy.seen) == 3
    assert len(sleep.delays) == 2


@pytest.mark.asyncio
async def test_other_client_errors_are_permanent_with_twilios_code(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    twilio_proxy.script(twilio_error(400, 21211, "Invalid 'To' Phone Number"))
    adapter = adapter_for(twilio_proxy, sleep=NoSleep())
    result = await adapter.send(message())

    assert (result.ok, result.error_code, result.permanent, result.opted_out) == (
        False,
        "21211",
        True,
        False,
    )


@pytest.mark.asyncio
async def test_breaker_opens_after_repeated_failures_and_stops_calling(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    twilio_proxy.fail_always(twilio_error(503, 20503, "Service Unavailable"))
    adapter = adapter_for(
        twilio_proxy,
        sleep=NoSleep(),
        retry=RetryPolicy(attempts=2),
        breaker_factory=lambda: CircuitBreaker(failure_threshold=4, reset_timeout=3600),
    )
    first = await adapter.send(message())
    assert adapter.health()[Channel.SMS] == "degraded"
    second = await adapter.send(message())
    calls = len(twilio_proxy.seen)
    third = await adapter.send(message())

    assert first.error_code == second.error_code == "20503"
    assert third.error_code == "circuit_open"
    assert calls == 4 and len(twilio_proxy.seen) == 4  # the open circuit made no call
    assert adapter.health() == {
        Channel.SMS: "circuit_open",
        Channel.WHATSAPP: "up",
        Channel.RCS: "up",
    }


@pytest.mark.asyncio
async def test_unconfigured_sender_is_a_permanent_not_configured(
    twilio_proxy: FaultProxy, adapter_for: Callable[..., TwilioMessagingAdapter]
) -> None:
    adapter = adapter_for(
        twilio_proxy,
        settings=settings(twilio_proxy.url, whatsapp_from=None, messaging_service_sid=None),
    )
    result = await adapter.send(message(Channel.WHATSAPP))

    assert (result.error_code, result.permanent) == ("not_configured", True)
    assert adapter.configured_channels == {Channel.SMS}
    assert twilio_proxy.seen == []


@pytest.mark.asyncio
async def test_prism_rejects_requests_that_break_twilios_schema(twilio_proxy: FaultProxy) -> None:
    """The premise of the tests above: an invalid request would not get 201."""
    token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            twilio_proxy.url + MESSAGES_PATH,
            data={"To": "+14155550101", "MessagingServiceSid": "not-a-service-sid", "Body": "x"},
            headers={"Authorization": f"Basic {token}"},
        ) as response,
    ):
        assert response.status == 422
