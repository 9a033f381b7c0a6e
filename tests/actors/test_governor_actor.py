"""The FatigueGovernorActor alone: recorders stand in for the dispatchers, the store
writer and the profile shard that asks; each test reads what they received.

What a customer would notice: which of their messages go out, on which channel, which
are held back and why, and that a send which failed at the provider does not count
against their caps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import pytest
from actor_support import POLICY, WAIT, Inbox, recorder, send_request

from omniconsole.actors.governor import FatigueGovernorActor
from omniconsole.actors.messages import (
    DecideBatch,
    Decided,
    DispatchBatch,
    ForgetUsageBefore,
    LoadUsage,
    Release,
    Sync,
)
from omniconsole.domain.assignment import HOLDOUT_JOURNEY, Arm
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.governor import (
    DEFERRED,
    HELD_OUT,
    SEND,
    SUPPRESSED,
    Decision,
    SendRequest,
)
from omniconsole.domain.records import LedgerRecord
from omniconsole.domain.timeutil import format_timestamp

NOON = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
D = timedelta(days=1)
SMS, EMAIL, IN_APP = Channel.SMS, Channel.EMAIL, Channel.IN_APP


@dataclass
class GovernorWorld:
    """A started governor, and the recorders around it."""

    governor: pykka.ActorRef[Any]
    dispatchers: dict[Channel, tuple[pykka.ActorRef[Any], Inbox]]
    writer: tuple[pykka.ActorRef[Any], Inbox]
    shard: tuple[pykka.ActorRef[Any], Inbox]
    tokens: int = 0

    def decide(self, *requests: SendRequest) -> Sequence[Decision]:
        """Ask as a profile shard does (a tell, answered by a `Decided` message)."""
        self.tokens += 1
        token = self.tokens
        shard_ref, answers = self.shard
        self.governor.tell(DecideBatch(token, requests, shard_ref))
        answers.wait_until(
            f"Decided {token}", lambda box: any(d.token == token for d in box.of(Decided))
        )
        [answer] = [d for d in answers.of(Decided) if d.token == token]
        return answer.decisions

    def settle(self) -> None:
        """Every message the governor sent so far has been recorded."""
        self.governor.ask(Sync(), timeout=WAIT)
        for ref, _ in [*self.dispatchers.values(), self.writer]:
            ref.ask(Sync(), timeout=WAIT)

    def dispatched(self, channel: Channel) -> list[SendRequest]:
        """Requests handed to `channel`'s dispatcher, in order."""
        return [
            item.request
            for batch in self.dispatchers[channel][1].of(DispatchBatch)
            for item in batch.items
        ]


@pytest.fixture
def world() -> Iterator[GovernorWorld]:
    dispatchers = {channel: recorder() for channel in Channel}
    writer = recorder()
    governor = FatigueGovernorActor.start(
        POLICY, {channel: ref for channel, (ref, _) in dispatchers.items()}, writer[0]
    )
    yield GovernorWorld(governor, dispatchers, writer, recorder())


def sms(customer: str = "c-1", at: datetime = NOON, **kw: Any) -> SendRequest:
    return send_request(customer, now=at, channels=(SMS,), **kw)


def test_decisions_come_back_to_the_asking_shard_in_the_order_of_its_requests(
    world: GovernorWorld,
) -> None:
    decisions = world.decide(
        sms("c-1"),
        sms("c-2", usable=()),  # no phone: nothing usable
        sms("c-3", timezone="Asia/Tokyo"),  # 21:00 in Tokyo: quiet hours
    )
    assert [(d.outcome, d.reason) for d in decisions] == [
        (SEND, None),
        (SUPPRESSED, "unreachable"),
        (DEFERRED, "quiet_hours"),
    ]


def test_each_allowed_send_goes_to_its_own_channels_dispatcher_and_no_other(
    world: GovernorWorld,
) -> None:
    world.decide(
        sms("c-1", step="nudge"),
        send_request("c-2", now=NOON, step="receipt", channels=(EMAIL,),
                     category=Category.TRANSACTIONAL),
        send_request("c-3", now=NOON, step="welcome", channels=(IN_APP,)),
    )  # fmt: skip
    world.settle()
    assert [r.step for r in world.dispatched(SMS)] == ["nudge"]
    assert [r.step for r in world.dispatched(EMAIL)] == ["receipt"]
    assert [r.step for r in world.dispatched(IN_APP)] == ["welcome"]
    for channel in set(Channel) - {SMS, EMAIL, IN_APP}:
        assert world.dispatchers[channel][1].all() == [], channel
    # caps count lifecycle sends on capped channels only: not transactional, not in-app
    capped = {
        channel: [item.capped for b in world.dispatchers[channel][1].of(DispatchBatch)
                  for item in b.items]
        for channel in (SMS, EMAIL, IN_APP)
    }  # fmt: skip
    assert capped == {SMS: [True], EMAIL: [False], IN_APP: [False]}


@pytest.mark.parametrize("same_batch", [True, False], ids=["same batch", "later batch"])
def test_a_second_capped_sms_within_24_hours_is_blocked_by_the_sms_cap(
    world: GovernorWorld, same_batch: bool
) -> None:
    first, second = sms(at=NOON, step="a"), sms(at=NOON + 23 * H, step="b", seq=2)
    if same_batch:
        decisions = list(world.decide(first, second))
    else:
        decisions = [*world.decide(first), *world.decide(second)]
    assert [(d.outcome, d.reason) for d in decisions] == [
        (SEND, None),
        (SUPPRESSED, "cap:sms:24h"),
    ]
    world.settle()
    assert [r.step for r in world.dispatched(SMS)] == ["a"]


def test_an_sms_exactly_24_hours_after_the_last_one_is_allowed_again(world: GovernorWorld) -> None:
    world.decide(sms(at=NOON))
    [decision] = world.decide(sms(at=NOON + 24 * H, seq=2))
    assert (decision.outcome, decision.channel) == (SEND, SMS)


def test_deferrals_and_suppressions_are_written_to_the_ledger_and_sends_are_left_to_dispatch(
    world: GovernorWorld,
) -> None:
    world.decide(sms("c-1"), sms("c-2", usable=()), sms("c-3", timezone="Asia/Tokyo"))
    world.settle()
    ledger = world.writer[1].records(LedgerRecord)
    assert [(r.customer, r.outcome, r.reason, r.deferred_until) for r in ledger] == [
        ("c-2", SUPPRESSED, "unreachable", None),
        ("c-3", DEFERRED, "quiet_hours", "2026-02-02T23:00:00Z"),  # 08:00 in Tokyo
    ]


def test_a_held_out_sms_is_written_as_held_out_not_dispatched_and_counts_against_no_cap(
    world: GovernorWorld,
) -> None:
    held = replace(sms(at=NOON, step="nudge"), arm=Arm(HOLDOUT_JOURNEY, True, None))
    [decision] = world.decide(held)
    assert (decision.outcome, decision.channel, decision.reason) == (
        HELD_OUT,
        SMS,
        HOLDOUT_JOURNEY,
    )
    # a treated SMS an hour later is not blocked by the SMS cap of 1 per 24 h
    [later] = world.decide(sms(at=NOON + H, step="other", seq=2))
    assert (later.outcome, later.channel) == (SEND, SMS)
    world.settle()
    assert [r.step for r in world.dispatched(SMS)] == ["other"]
    ledger = world.writer[1].records(LedgerRecord)
    assert [(r.step, r.outcome, r.reason, r.channel) for r in ledger] == [
        ("nudge", HELD_OUT, HOLDOUT_JOURNEY, "sms")
    ]


def test_a_failed_send_released_by_its_dispatcher_no_longer_counts(world: GovernorWorld) -> None:
    [first] = world.decide(sms(at=NOON))
    assert first.outcome == SEND
    world.governor.tell(Release("c-1", sms().message_id, format_timestamp(NOON), "sms"))
    [retry] = world.decide(sms(at=NOON + H, seq=2))
    assert (retry.outcome, retry.channel) == (SEND, SMS)


def test_releasing_a_failed_sms_frees_the_sms_cap_when_an_email_went_out_at_the_same_instant(
    world: GovernorWorld,
) -> None:
    email = send_request(now=NOON, step="welcome", channels=(EMAIL,))
    text = sms(at=NOON, step="nudge", seq=2)
    assert [d.outcome for d in world.decide(email, text)] == [SEND, SEND]
    world.governor.tell(Release("c-1", text.message_id, format_timestamp(NOON), "sms"))
    [retry] = world.decide(sms(at=NOON + H, step="retry", seq=3))
    assert (retry.outcome, retry.channel) == (SEND, SMS)
    # and the email still counts: with the retried SMS the 24-hour cap of 2 is full
    [third] = world.decide(send_request(now=NOON + 2 * H, step="more", seq=4, channels=(EMAIL,)))
    assert (third.outcome, third.reason) == (DEFERRED, "cap:all:24h")


def test_usage_loaded_after_a_restart_counts_against_the_caps(world: GovernorWorld) -> None:
    assert world.governor.ask(LoadUsage([("c-1", NOON - H, "sms")]), timeout=WAIT) == 1
    [decision] = world.decide(sms(at=NOON))
    assert (decision.outcome, decision.reason) == (SUPPRESSED, "cap:sms:24h")


def test_forgetting_old_usage_keeps_every_send_the_7_day_cap_can_still_count(
    world: GovernorWorld,
) -> None:
    five_days = [("c-1", NOON - n * D, "email") for n in (6, 5, 4, 3, 2)]
    world.governor.ask(LoadUsage(five_days), timeout=WAIT)
    world.governor.tell(ForgetUsageBefore(NOON))
    [decision] = world.decide(send_request(now=NOON, channels=(EMAIL,)))
    assert (decision.outcome, decision.reason) == (DEFERRED, "cap:all:7d")
    assert decision.until == NOON + D  # when the send of 6 days ago leaves the window


def test_the_governor_forgets_customers_whose_sends_have_all_left_the_longest_window(
    world: GovernorWorld,
) -> None:
    # memory stays bounded by the customers who could still be capped
    world.governor.ask(
        LoadUsage([("old", NOON - 8 * D, "sms"), ("recent", NOON - 6 * D, "sms")]), timeout=WAIT
    )
    world.governor.tell(ForgetUsageBefore(NOON))
    usage = world.governor.proxy().usage.get(timeout=WAIT)
    assert sorted(usage) == ["recent"]


def test_an_unknown_message_is_refused_with_a_type_error_and_the_governor_keeps_going(
    world: GovernorWorld,
) -> None:
    with pytest.raises(TypeError, match="unexpected message 'hello'"):
        world.governor.ask("hello", timeout=WAIT)
    [decision] = world.decide(sms())
    assert decision.outcome == SEND
