"""The governor's decision for a step with channel rules (`domain.selection`).

Each test builds one request with its `ChannelPlan` by hand — as the flow would from
the customer's history — and reads what the operator sees: outcome, channel, reason,
the extra ledger keys and the explanation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omniconsole.domain.affinity import Score
from omniconsole.domain.channel_plan import DIGESTED, ChannelPlan, DigestSummary
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import Policy, load_config, shipped_config_dir
from omniconsole.domain.governor import (
    DEFERRED,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    decide,
)
from omniconsole.domain.send_time import BestHour

POLICY: Policy = load_config(shipped_config_dir()).policy
NOON = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
NIGHT = datetime(2026, 2, 2, 23, 0, tzinfo=UTC)  # quiet hours in UTC
H = timedelta(hours=1)

E, S, W, P = Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.PUSH
ALERT = (P, W, E)


def request(
    plan: ChannelPlan,
    *,
    now: datetime = NOON,
    channels: tuple[Channel, ...] = ALERT,
    usable: frozenset[Channel] = frozenset(ALERT),
    category: Category = Category.PROMOTIONAL,
    preferred: str | None = None,
    first_due: datetime | None = None,
) -> SendRequest:
    return SendRequest(
        customer="c-1",
        seq=1,
        message_id="c-1:price_drop:1:alert",
        journey="price_drop",
        instance=1,
        step="alert",
        category=category,
        channels=channels,
        usable=usable,
        preferred=preferred,
        timezone="UTC",
        now=now,
        first_due=first_due or now,
        event_times={},
        engagement=None,
        plan=plan,
    )


def affinity(*pairs: tuple[Channel, float]) -> ChannelPlan:
    found = tuple(Score(c, v, 0, 0) for c, v in pairs)
    order = tuple(c for c, _ in sorted(pairs, key=lambda p: -p[1]))
    return ChannelPlan(order=order, scores=found)


def run(req: SendRequest, *sends: tuple[datetime, str]) -> Decision:
    return decide(req, POLICY, CapUsage(sorted(sends)))


# ---- affinity ----


def test_affinity_sends_on_the_highest_scoring_usable_channel() -> None:
    plan = affinity((P, 0.1), (W, 0.2), (E, 0.6))
    decision = run(request(plan))
    assert (decision.outcome, decision.channel) == (SEND, E)
    assert decision.extra == {"affinity": {"push": 0.1, "whatsapp": 0.2, "email": 0.6}}
    assert "affinity (engaged/sent) ranks the usable channels email 0.60" in decision.explanation


def test_affinity_falls_through_to_the_next_channel_when_the_best_is_not_usable() -> None:
    plan = affinity((P, 0.1), (W, 0.2), (E, 0.6))
    decision = run(request(plan, usable=frozenset({P, W})))
    assert decision.channel is W


def test_affinity_passes_over_a_channel_whose_own_cap_is_full() -> None:
    plan = affinity((W, 0.9), (E, 0.1))
    decision = run(request(plan, usable=frozenset({W, E})), (NOON - H, "whatsapp"))
    assert decision.channel is E


# ---- what a block does ----


def test_switch_sends_now_on_the_next_channel_outside_quiet_hours() -> None:
    plan = ChannelPlan(on_block="switch")
    decision = run(request(plan, now=NIGHT))
    assert (decision.outcome, decision.channel) == (SEND, E)
    assert decision.extra == {"switched_from": {"channel": "push", "reason": "quiet_hours"}}
    assert "switched from push (quiet_hours)" in decision.explanation


def test_switch_defers_as_the_spec_says_when_no_channel_can_go_now() -> None:
    plan = ChannelPlan(on_block="switch")
    decision = run(request(plan, now=NIGHT, usable=frozenset({P, W})))
    assert (decision.outcome, decision.channel, decision.reason) == (DEFERRED, P, "quiet_hours")
    assert decision.until == datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
    assert "no other usable channel could go now" in decision.explanation


def test_suppress_drops_a_send_in_quiet_hours() -> None:
    decision = run(request(ChannelPlan(on_block="suppress"), now=NIGHT))
    assert (decision.outcome, decision.channel, decision.reason) == (
        SUPPRESSED,
        P,
        "quiet_hours",
    )


def test_defer_in_quiet_hours_is_the_spec_behaviour() -> None:
    decision = run(request(ChannelPlan(on_block="defer"), now=NIGHT))
    assert (decision.outcome, decision.reason) == (DEFERRED, "quiet_hours")


def test_defer_waits_for_room_in_the_first_choices_own_cap() -> None:
    plan = ChannelPlan(on_block="defer")
    req = request(plan, channels=(W, E), usable=frozenset({W, E}), category=Category.LIFECYCLE)
    decision = run(req, (NOON - 2 * H, "whatsapp"))
    assert (decision.outcome, decision.channel, decision.reason) == (
        DEFERRED,
        W,
        "cap:whatsapp:24h",
    )
    assert decision.until == NOON + 22 * H


def test_suppress_drops_a_send_whose_first_choice_has_a_full_own_cap() -> None:
    plan = ChannelPlan(on_block="suppress")
    decision = run(request(plan, channels=(W, E), usable=frozenset({W, E})), (NOON - H, "whatsapp"))
    assert (decision.outcome, decision.reason) == (SUPPRESSED, "cap:whatsapp:24h")


def test_switch_names_the_full_cap_it_passed_over() -> None:
    plan = ChannelPlan(on_block="switch")
    decision = run(request(plan, channels=(W, E), usable=frozenset({W, E})), (NOON - H, "whatsapp"))
    assert decision.channel is E
    assert decision.extra == {
        "switched_from": {"channel": "whatsapp", "reason": "cap:whatsapp:24h"}
    }


# ---- send time ----


def test_best_hour_defers_to_the_customers_hour_within_the_delay_allowed() -> None:
    plan = ChannelPlan(best_hour=BestHour(19, True, 4, 6), max_delay=timedelta(hours=24))
    decision = run(request(plan))
    assert (decision.outcome, decision.reason) == (DEFERRED, "send_time:best_hour")
    assert decision.until == NOON + 7 * H
    assert decision.extra == {"send_at": {"hour": "19:00", "basis": "customer", "engagements": 6}}
    assert "their most engaged hour (4 of 6 recent engagements)" in decision.explanation


def test_best_hour_sends_when_its_hour_has_come() -> None:
    plan = ChannelPlan(best_hour=BestHour(12, False, 0, 0), max_delay=timedelta(hours=24))
    decision = run(request(plan, now=NOON + 30 * timedelta(minutes=1)))
    assert decision.outcome == SEND
    assert "at 12:00 local, the population's hour" in decision.explanation


def test_best_hour_beyond_the_delay_allowed_sends_now() -> None:
    plan = ChannelPlan(best_hour=BestHour(19, True, 3, 3), max_delay=timedelta(hours=2))
    decision = run(request(plan))
    assert decision.outcome == SEND
    assert decision.extra is not None and decision.extra["send_at"]["late"] is True
    assert "beyond the 2h delay allowed" in decision.explanation


def test_a_best_hour_send_is_still_subject_to_quiet_hours() -> None:
    plan = ChannelPlan(best_hour=BestHour(23, True, 3, 3), max_delay=timedelta(hours=24))
    decision = run(request(plan, now=NIGHT, usable=frozenset({P})))
    assert (decision.outcome, decision.reason) == (DEFERRED, "quiet_hours")


# ---- topics ----


def test_a_topic_off_on_every_usable_channel_is_consent_withdrawn() -> None:
    plan = ChannelPlan(topic="deals", topic_off=frozenset({P, E}))
    decision = run(request(plan, usable=frozenset()))
    assert (decision.outcome, decision.channel, decision.reason) == (
        SUPPRESSED,
        None,
        "consent:topic:deals",
    )
    assert decision.extra == {"topic_off": {"topic": "deals", "channels": ["email", "push"]}}


def test_a_topic_off_on_some_channels_sends_on_another() -> None:
    plan = ChannelPlan(topic="deals", topic_off=frozenset({P}))
    decision = run(request(plan, usable=frozenset({E})))
    assert (decision.outcome, decision.channel) == (SEND, E)
    assert "topic deals is off on push" in decision.explanation


def test_no_address_at_all_is_unreachable_not_a_topic() -> None:
    decision = run(request(ChannelPlan(topic="deals"), usable=frozenset()))
    assert decision.reason == "unreachable"


# ---- digests ----


def test_the_first_trigger_of_a_digest_waits_for_the_window() -> None:
    plan = ChannelPlan(digest_open=timedelta(hours=6), digest_label="6h")
    decision = run(request(plan))
    assert (decision.outcome, decision.reason) == (DEFERRED, "digest:6h")
    assert decision.until == NOON + 6 * H
    assert decision.extra == {"digest": {"window": "6h", "items": 1}}


def test_a_later_trigger_joins_the_digest_and_points_at_its_message() -> None:
    plan = ChannelPlan(joined="c-1:price_drop:1:alert", digest_label="6h")
    decision = run(request(plan))
    assert (decision.outcome, decision.channel, decision.reason) == (DIGESTED, None, "digest:6h")
    assert decision.extra == {"joined": "c-1:price_drop:1:alert"}


def test_a_digests_message_lists_every_trigger() -> None:
    summary = DigestSummary("6h", 3, ("c-1:price_drop:2:alert", "c-1:price_drop:3:alert"))
    decision = run(request(ChannelPlan(digest=summary)))
    assert decision.outcome == SEND
    assert decision.extra == {"digest": summary.to_json()}
    assert "a 6h digest of 3 triggers" in decision.explanation


def test_a_digests_message_is_held_to_the_all_channel_caps_like_any_send() -> None:
    summary = DigestSummary("6h", 3, ("a", "b"))
    decision = run(request(ChannelPlan(digest=summary)), (NOON - H, "email"), (NOON - 2 * H, "sms"))
    assert (decision.outcome, decision.reason) == (SUPPRESSED, "cap:all:24h")
