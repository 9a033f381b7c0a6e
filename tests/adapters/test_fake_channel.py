"""The in-memory fake behaves like a real adapter: scripted outcomes, retries inside."""

from __future__ import annotations

import pytest

from omniconsole.adapters.channels.fake import (
    FakeChannelAdapter,
    ok,
    opted_out,
    permanent,
    transient,
)
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import OutboundMessage, Recipient


def message(customer: str = "c-1", channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"m-{customer}",
        channel=channel,
        category=Category.LIFECYCLE,
        journey="onboarding",
        step="nudge_day3",
        recipient=Recipient(customer=customer, phone="+14155550101"),
        subject="",
        text="hi",
    )


def test_fake_satisfies_the_port() -> None:
    assert isinstance(FakeChannelAdapter(), ChannelAdapter)


@pytest.mark.asyncio
async def test_unscripted_sends_succeed() -> None:
    fake = FakeChannelAdapter()
    assert (await fake.send(message())).ok
    assert fake.sent == [message()]


@pytest.mark.asyncio
async def test_transient_failures_are_retried_inside() -> None:
    fake = FakeChannelAdapter(retry=RetryPolicy(attempts=3))
    fake.script(transient(2), transient(5))

    assert (await fake.send(message())).ok
    failed = await fake.send(message())
    assert (failed.ok, failed.permanent, failed.error_code) == (False, False, "http_503")
    assert len(fake.attempts) == 3 + 3


@pytest.mark.asyncio
async def test_permanent_and_opted_out_per_customer() -> None:
    fake = FakeChannelAdapter()
    fake.script(opted_out(), customer="c-2")
    fake.script(permanent("21211"))

    first = await fake.send(message("c-2"))
    second = await fake.send(message("c-1"))
    third = await fake.send(message("c-2"))
    assert (first.opted_out, first.permanent, first.error_code) == (True, True, "21610")
    assert (second.error_code, second.permanent) == ("21211", True)
    assert third.ok
    assert len(fake.attempts) == 3


@pytest.mark.asyncio
async def test_breaker_opens_like_a_real_adapter() -> None:
    fake = FakeChannelAdapter(retry=RetryPolicy(attempts=2), failure_threshold=2)
    fake.script(transient(9), ok())

    assert not (await fake.send(message())).ok
    assert fake.health() == {Channel.SMS: "circuit_open"}
    assert (await fake.send(message())).error_code == "circuit_open"
