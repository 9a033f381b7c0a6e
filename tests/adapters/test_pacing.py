"""An adapter's provider calls may be paced from outside, through its public hook
(`PacedAdapter.pace_with`, reached through `DeliveryRunner.pace_with`): `serve --ray`
paces every partition's sends with one bucket per provider and channel for the whole
cluster. A paced call waits for the shared limiter, one slot per provider call."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy
from live_fakes import MovableClock, Provider, order
from peers import LoopbackController, SmtpRecorder

from omniconsole.adapters.channels.email_smtp import SmtpEmailAdapter
from omniconsole.adapters.channels.messaging_twilio import TwilioMessagingAdapter
from omniconsole.adapters.channels.ports import PacedAdapter
from omniconsole.adapters.channels.push_fcm import FcmPushAdapter
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.adapters.channels.settings import FcmSettings, Secret, SmtpSettings, TwilioSettings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.messages import OutboundMessage, Recipient
from omniconsole.engine.live import LiveEngine


class Gate:
    """A shared limiter that lets no call through until opened; counts its slots.
    Thread-safe: the delivery runner's loop runs on a thread of its own."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.asked = threading.Event()
        self.slots = 0

    async def acquire(self) -> None:
        self.slots += 1
        self.asked.set()
        await asyncio.to_thread(self.opened.wait)


class Factory:
    """A `LimiterFactory` handing out one gate, recording what it was asked for."""

    def __init__(self) -> None:
        self.gate = Gate()
        self.asked: list[tuple[str, Channel, float, float]] = []

    def __call__(self, adapter: str, channel: Channel, rate: float, burst: float) -> Gate:
        self.asked.append((adapter, channel, rate, burst))
        return self.gate


def twilio_settings(url: str) -> TwilioSettings:
    return TwilioSettings(account_sid="AC" + "0" * 32, auth_token=Secret("t"),
                          sms_from="+15005550006", whatsapp_from="whatsapp:+14155238886",
                          api_base_url=url)  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [2.0, 0.0])
async def test_every_real_adapter_offers_each_rate_limited_channel_to_be_paced(
    rate: float,
) -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=9, from_addr="a@b.example")
    fcm = FcmSettings(Path("/nonexistent.json"), "p", api_base_url="http://127.0.0.1:9")
    adapters: list[Any] = [
        SmtpEmailAdapter(smtp, rate_per_second=rate),
        TwilioMessagingAdapter(twilio_settings("http://127.0.0.1:9"), rate_per_second=rate),
        FcmPushAdapter(fcm, rate_per_second=rate),
    ]
    factory = Factory()
    for adapter in adapters:
        assert isinstance(adapter, PacedAdapter)
        adapter.pace_with(factory)
        await adapter.aclose()
    expected = {("email_smtp", Channel.EMAIL), ("twilio", Channel.SMS),
                ("twilio", Channel.WHATSAPP), ("fcm", Channel.PUSH)}  # fmt: skip
    got = set(factory.asked)
    # an unlimited channel (rate 0) stays unpaced: nothing to share
    assert len(factory.asked) == len(got)  # each channel once
    assert got == ({(*e, rate, rate) for e in expected} if rate else set())


@pytest.mark.asyncio
async def test_an_smtp_send_waits_for_the_limiter_it_is_paced_with(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=smtp_server.port, from_addr="a@omni.example",
                            starttls=False)  # fmt: skip
    adapter = SmtpEmailAdapter(settings, rate_per_second=3, retry=RetryPolicy(attempts=1))
    factory = Factory()
    adapter.pace_with(factory)
    message = OutboundMessage(
        message_id="m-1", channel=Channel.EMAIL, category=Category.LIFECYCLE,
        journey="onboarding", step="welcome", subject="Hi",
        recipient=Recipient(customer="c-1", email="ana@example.com"), text="Hello",
    )  # fmt: skip
    sending = asyncio.create_task(adapter.send(message))
    assert await asyncio.to_thread(factory.gate.asked.wait, 10)
    assert smtp_recorder.envelopes == []  # held by the shared limiter
    factory.gate.opened.set()
    result = await sending
    await adapter.aclose()
    assert result.ok and len(smtp_recorder.envelopes) == 1
    assert factory.gate.slots == 1


@pytest.mark.asyncio
async def test_a_twilio_send_takes_a_slot_from_its_channels_limiter(
    twilio_proxy: FaultProxy,
) -> None:
    adapter = TwilioMessagingAdapter(twilio_settings(twilio_proxy.url), rate_per_second=1)
    factory = Factory()
    factory.gate.opened.set()
    adapter.pace_with(factory)
    message = OutboundMessage(
        message_id="m-1", channel=Channel.SMS, category=Category.TRANSACTIONAL,
        journey="fraud_alert", step="alert", subject="",
        recipient=Recipient(customer="c-1", phone="+14155550101"), text="Was it you?",
    )  # fmt: skip
    result = await adapter.send(message)
    await adapter.aclose()
    assert result.ok, result
    assert factory.gate.slots == 1 and len(twilio_proxy.seen) == 1


def test_the_delivery_runner_paces_the_live_engines_sends_through_the_hook(
    tmp_path: Path,
) -> None:
    """The live engine's sends wait for the limiter its runner was paced with: none
    reaches the provider before the limiter lets it, then each takes one slot."""
    email = Provider(rate=5)
    engine = LiveEngine(
        load_config(shipped_config_dir()), SqliteStore(tmp_path / "live.db"),
        {Channel.EMAIL: email, Channel.SMS: email}, None, Metrics(),
        clock=MovableClock(), tick=0.05, poll=0.05,
    )  # fmt: skip
    factory = Factory()
    assert engine.runner.pace_with(factory) == ["fake"]  # one adapter, paced once
    engine.start()
    try:
        engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
        assert factory.gate.asked.wait(10), "the receipt never asked the limiter"
        assert email.attempts == []  # held
        factory.gate.opened.set()
        email.wait(lambda: len(email.sent) == 1, "the receipt never went")
    finally:
        engine.stop()
    assert factory.asked == [("fake", Channel.EMAIL, 5.0, 5.0)]
    assert factory.gate.slots == 1
