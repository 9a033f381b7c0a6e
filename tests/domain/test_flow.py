"""Journey rules (SPEC §5, §6 time order) on one customer, with the shipped config.

`CustomerFlow.run` is driven synchronously: every `SendRequest` it yields is answered with
the pure `decide` and the customer's cap usage, and an allowed capped send is recorded,
just as the governor actor does. The tests read the list of (request, decision) pairs —
what the ledger would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.flow import CONVERTED, EXPIRED, CustomerFlow, Effects, TimedEvent
from omniconsole.domain.governor import (
    DEFERRED,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    decide,
    is_capped,
)
from omniconsole.domain.profile import Profile

CONFIG: EngineConfig = load_config(shipped_config_dir())
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)

REACHABLE: dict[str, Any] = {
    "email": "ana@example.com",
    "phone": "+14155550101",
    "whatsapp_opt_in": True,
    "push_token": "tok-1",
}


def track(at: datetime, name: str, **props: Any) -> Event:
    return Event("track", "c-1", at, name=name, properties=props)


@dataclass
class Customer:
    """One customer run through the flow, with a synchronous stand-in for the governor."""

    profile: Profile
    flow: CustomerFlow = field(default_factory=lambda: CustomerFlow(CONFIG, with_recipient=False))
    usage: CapUsage = field(default_factory=CapUsage)
    effects: Effects = field(default_factory=Effects)
    decisions: list[tuple[SendRequest, Decision]] = field(default_factory=list)

    def run(self, *events: Event, horizon: datetime | None = None) -> None:
        timed = [TimedEvent(e.at, e) for e in events]
        flow = self.flow.run(self.profile, timed, horizon, self.effects)
        policy = CONFIG.policy
        try:
            req = next(flow)
            while True:
                decision = decide(req, policy, self.usage)
                channel = decision.channel
                if (
                    decision.outcome == SEND
                    and channel is not None
                    and is_capped(policy, req.category, channel)
                ):
                    self.usage.record(req.now, str(channel))
                self.decisions.append((req, decision))
                req = flow.send(decision)
        except StopIteration:
            pass

    def lines(self, journey: str | None = None) -> list[tuple[Any, ...]]:
        """(at offset from T0, journey, step, outcome, channel, reason) per decision."""
        return [
            (
                req.now - T0,
                req.journey,
                req.step,
                d.outcome,
                None if d.channel is None else str(d.channel),
                d.reason,
            )
            for req, d in self.decisions
            if journey is None or req.journey == journey
        ]

    def steps(self, journey: str | None = None) -> list[str]:
        return [
            f"{req.journey}.{req.step}"
            for req, _ in self.decisions
            if journey in (None, req.journey)
        ]

    def status(self, journey: str, number: int = 1) -> str:
        rows = {(r[1], r[2]): r for r in self.effects.rows()}
        return str(rows[(journey, number)][4])


def customer(**traits: Any) -> Customer:
    return Customer(Profile("c-1", traits=dict(traits)))


@pytest.fixture
def ana() -> Customer:
    return customer(**REACHABLE)


# ---- onboarding ----


def test_onboarding_welcome_then_nudges_on_schedule(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"))
    assert ana.lines() == [
        (timedelta(0), "onboarding", "welcome", SEND, "email", None),
        (72 * H, "onboarding", "nudge_day3", SEND, "whatsapp", None),
        (168 * H, "onboarding", "nudge_day7", SEND, "sms", None),
    ]


def test_onboarding_enters_once_per_customer(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + D, "Signed Up"), track(T0 + 20 * D, "Signed Up"))
    assert ana.steps() == ["onboarding.welcome", "onboarding.nudge_day3", "onboarding.nudge_day7"]
    # the second Signed Up reset no timer
    assert [line[0] for line in ana.lines()] == [timedelta(0), 72 * H, 168 * H]


def test_first_login_only_on_the_first_logged_in_of_the_instance(ana: Customer) -> None:
    ana.run(
        track(T0 - H, "Logged In"),
        track(T0, "Signed Up"),
        track(T0 + H, "Logged In"),
        track(T0 + 2 * H, "Logged In"),
    )
    first = [line for line in ana.lines() if line[2] == "first_login"]
    assert first == [(H, "onboarding", "first_login", SEND, "in_app", None)]


def test_no_first_login_after_the_instance_converted(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + D, "Activated"), track(T0 + 2 * D, "Logged In"))
    assert ana.steps() == ["onboarding.welcome"]


def test_nudges_skipped_without_a_request_after_activated(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + D, "Activated"))
    assert ana.steps() == ["onboarding.welcome"]
    assert ana.status("onboarding") == CONVERTED
    assert ana.profile.timers == [] or all(t.kind == "expire" for t in ana.profile.timers)


def test_activated_between_the_nudges_skips_only_the_later_one(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 5 * D, "Activated"))
    assert ana.steps() == ["onboarding.welcome", "onboarding.nudge_day3"]
    assert ana.status("onboarding") == CONVERTED


def test_activated_at_a_timers_instant_is_applied_first(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 72 * H, "Activated"))
    assert ana.steps() == ["onboarding.welcome"]


def test_activated_within_14_days_is_a_conversion(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 13 * D + 23 * H, "Activated"))
    assert ana.status("onboarding") == CONVERTED


def test_activated_after_14_days_is_no_conversion(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 15 * D, "Activated"))
    assert ana.status("onboarding") == EXPIRED
    assert ana.steps() == ["onboarding.welcome", "onboarding.nudge_day3", "onboarding.nudge_day7"]


def test_activated_after_every_step_ran_is_still_a_conversion(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + H, "Logged In"), track(T0 + 8 * D, "Activated"))
    assert ana.steps() == [
        "onboarding.welcome",
        "onboarding.first_login",
        "onboarding.nudge_day3",
        "onboarding.nudge_day7",
    ]
    assert ana.status("onboarding") == CONVERTED


def test_no_step_runs_after_the_14_days(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 14 * D + 30 * timedelta(minutes=1), "Logged In"))
    assert "onboarding.first_login" not in ana.steps()


# ---- product recommendation ----


def test_recommendation_a_day_after_the_view(ana: Customer) -> None:
    ana.run(track(T0, "Product Viewed", product="p-1"))
    assert ana.lines() == [(24 * H, "product_recommendation", "recommend", SEND, "whatsapp", None)]


def test_one_live_recommendation_at_a_time(ana: Customer) -> None:
    ana.run(
        track(T0, "Product Viewed"),
        track(T0 + 2 * H, "Product Viewed"),  # instance live: does not enter
        track(T0 + 25 * H, "Product Viewed"),  # the first one was decided: enters
    )
    assert [line[0] for line in ana.lines()] == [24 * H, 49 * H]
    assert ana.profile.instance_counter["product_recommendation"] == 2


def test_recommendation_skipped_without_a_request_when_ordered_since_entry(ana: Customer) -> None:
    ana.run(track(T0, "Product Viewed"), track(T0 + H, "Order Completed"))
    assert ana.steps() == ["order_confirmation.receipt"]
    # the skipped instance is over: the next view enters
    ana.run(track(T0 + 2 * D, "Product Viewed"))
    assert ana.steps("product_recommendation") == ["product_recommendation.recommend"]


def test_order_before_the_view_does_not_skip_it(ana: Customer) -> None:
    ana.run(track(T0, "Order Completed"), track(T0 + H, "Product Viewed"))
    assert ana.steps() == ["order_confirmation.receipt", "product_recommendation.recommend"]


def test_order_at_the_recommendation_instant_is_applied_first(ana: Customer) -> None:
    ana.run(track(T0, "Product Viewed"), track(T0 + 24 * H, "Order Completed"))
    assert ana.steps() == ["order_confirmation.receipt"]


# ---- every-time journeys ----


def test_price_drop_every_time(ana: Customer) -> None:
    ana.run(*(track(T0 + n * 2 * H, "Price Dropped") for n in range(3)))
    requests = [req for req, _ in ana.decisions]
    assert [r.step for r in requests] == ["alert"] * 3
    assert len({r.message_id for r in requests}) == 3


def test_receipt_and_fraud_alert_every_time(ana: Customer) -> None:
    ana.run(
        track(T0, "Order Completed"),
        track(T0 + H, "Order Completed"),
        track(T0 + 2 * H, "Fraud Suspected"),
        track(T0 + 3 * H, "Fraud Suspected"),
    )
    assert ana.steps() == [
        "order_confirmation.receipt",
        "order_confirmation.receipt",
        "fraud_alert.alert",
        "fraud_alert.alert",
    ]


# ---- deferred sends decided again ----


def night_owl() -> Customer:
    """Reachable only on push: every capped send at night is deferred to 08:00 UTC."""
    return customer(push_token="tok-9")


def test_deferred_send_is_decided_again_at_08_00() -> None:
    owl = night_owl()
    owl.run(track(T0.replace(hour=22), "Product Viewed"))
    assert owl.lines() == [
        (12 * H + D, "product_recommendation", "recommend", DEFERRED, "push", "quiet_hours"),
        (22 * H + D, "product_recommendation", "recommend", SEND, "push", None),
    ]
    deferred, final = (req for req, _ in owl.decisions)
    assert deferred.message_id == final.message_id
    assert final.first_due == deferred.now


def test_deferred_send_whose_condition_no_longer_holds_exits() -> None:
    owl = night_owl()
    owl.run(
        track(T0.replace(hour=22), "Product Viewed"),
        track(T0.replace(hour=23) + D, "Order Completed"),
    )
    recommend = [(req, d) for req, d in owl.decisions if req.step == "recommend"]
    assert [(req.exited, d.outcome, d.reason) for req, d in recommend] == [
        (False, DEFERRED, "quiet_hours"),
        (True, SUPPRESSED, "exited"),
    ]
    assert recommend[1][1].channel is None
    assert recommend[1][0].now == T0.replace(hour=8) + 2 * D


def test_deferred_nudge_exits_after_activation() -> None:
    owl = night_owl()
    signed_up = T0.replace(hour=22)
    owl.run(track(signed_up, "Signed Up"), track(signed_up + 75 * H, "Activated"))
    nudge = [
        (req.exited, d.outcome, d.reason) for req, d in owl.decisions if req.step == "nudge_day3"
    ]
    assert nudge == [(False, DEFERRED, "quiet_hours"), (True, SUPPRESSED, "exited")]


def test_a_deferred_recommendation_keeps_the_instance_live() -> None:
    owl = night_owl()
    owl.run(
        track(T0.replace(hour=22), "Product Viewed"),
        track(T0.replace(hour=7) + 2 * D, "Product Viewed"),  # while deferred: no entry
        track(T0.replace(hour=9) + 2 * D, "Product Viewed"),  # after the final decision
    )
    assert owl.profile.instance_counter["product_recommendation"] == 2


# ---- Message Failed: one re-send to the next usable channel ----


def sent_ids(c: Customer) -> list[tuple[str, str | None, bool]]:
    return [
        (req.message_id, None if d.channel is None else str(d.channel), req.resend)
        for req, d in c.decisions
        if d.outcome == SEND
    ]


def test_failed_send_goes_once_to_the_next_channel(ana: Customer) -> None:
    ana.run(track(T0, "Fraud Suspected"))
    [(first, channel, _)] = sent_ids(ana)
    assert channel == "sms"
    ana.run(track(T0 + H, "Message Failed", channel="sms", message_id=first))
    resend = ana.decisions[-1][0]
    assert resend.channels == (Channel.PUSH, Channel.EMAIL)
    assert resend.message_id != first
    assert sent_ids(ana)[-1] == (resend.message_id, "push", True)
    # the re-send failing too is not re-sent; nor is a repeated report of the first failure
    ana.run(
        track(T0 + 2 * H, "Message Failed", channel="push", message_id=resend.message_id),
        track(T0 + 3 * H, "Message Failed", channel="sms", message_id=first),
        track(T0 + 4 * H, "Message Failed", channel="sms", journey="fraud_alert", step="alert"),
    )
    assert len(ana.decisions) == 2


def test_failed_send_skips_unusable_channels() -> None:
    c = customer(phone="+1415", email="a@b.c")
    c.run(track(T0, "Fraud Suspected"), track(T0 + H, "Message Failed", channel="sms"))
    assert [channel for _, channel, _ in sent_ids(c)] == ["sms", "email"]


def test_failure_for_another_channel_than_the_last_send_does_nothing(ana: Customer) -> None:
    ana.run(
        track(T0, "Fraud Suspected"),
        track(T0 + H, "Message Failed", channel="email", journey="fraud_alert", step="alert"),
    )
    assert len(ana.decisions) == 1


def test_failure_found_by_journey_and_step(ana: Customer) -> None:
    ana.run(
        track(T0, "Order Completed"),
        track(
            T0 + H, "Message Failed", channel="email", journey="order_confirmation", step="receipt"
        ),
    )
    assert [channel for _, channel, _ in sent_ids(ana)] == ["email", "sms"]


def test_failed_resend_of_a_promotional_step_passes_the_governor(ana: Customer) -> None:
    ana.run(
        track(T0, "Price Dropped"),
        track(T0 + H, "Price Dropped"),
        track(T0 + 2 * H, "Message Failed", channel="push", journey="price_drop", step="alert"),
    )
    req, d = ana.decisions[-1]
    assert req.resend
    assert (d.outcome, d.reason) == (SUPPRESSED, "cap:all:24h")


def test_failed_nudge_is_resent_while_the_instance_is_live() -> None:
    c = customer(phone="+1415", email="a@b.c")
    c.run(
        track(T0, "Signed Up"),
        track(
            T0 + 169 * H, "Message Failed", channel="sms", journey="onboarding", step="nudge_day7"
        ),
    )
    assert [channel for _, channel, _ in sent_ids(c)] == ["email", "sms", "sms", "email"]


def test_failed_last_nudge_is_resent_after_the_instance_completed() -> None:
    c = customer(phone="+1415", email="a@b.c")
    c.run(
        track(T0, "Signed Up"),
        track(T0 + H, "Logged In"),
        track(
            T0 + 169 * H, "Message Failed", channel="sms", journey="onboarding", step="nudge_day7"
        ),
    )
    assert [channel for _, channel, _ in sent_ids(c)] == ["email", "in_app", "sms", "sms", "email"]


def test_a_failure_reported_after_many_later_sends_still_falls_back() -> None:
    # SPEC §5 sets no bound on how old a failed message may be: twelve receipts later,
    # the first receipt's failure still re-sends it (once), to the next channel
    c = customer(phone="+1415", email="a@b.c")
    c.run(*(track(T0 + i * H, "Order Completed") for i in range(12)))
    first = "c-1:order_confirmation:1:receipt"
    c.run(track(T0 + 20 * H, "Message Failed", channel="email", message_id=first))
    assert sent_ids(c)[-1] == (first + ":fallback", "sms", True)


def test_a_failure_of_a_message_of_an_ended_onboarding_is_not_resent_however_old() -> None:
    c = customer(phone="+1415", email="a@b.c")
    c.run(
        track(T0, "Signed Up"),
        *(track(T0 + D + i * H, "Order Completed") for i in range(10)),
        track(T0 + 2 * D, "Activated"),  # the onboarding instance converted: it has ended
        track(T0 + 3 * D, "Message Failed", channel="email", journey="onboarding", step="welcome"),
    )
    assert not any(req.resend for req, _ in c.decisions)


def test_sends_that_can_never_fall_back_are_forgotten() -> None:
    # a converted onboarding's sends, once no older send could still fall back
    c = customer(phone="+1415", email="a@b.c")
    c.run(track(T0, "Signed Up"), track(T0 + 80 * H, "Activated"))
    c.run(*(track(T0 + 4 * D + i * H, "Fraud Suspected") for i in range(9)))
    kept = [(m.journey, m.step) for m in c.profile.sent]
    assert ("onboarding", "welcome") not in kept
    assert kept.count(("fraud_alert", "alert")) == 9


def test_a_sent_that_hides_an_older_one_that_can_fall_back_is_kept() -> None:
    # matched by channel alone, the most recent sms send answers the failure: an ended
    # onboarding's sms nudge, newer than an sms receipt, must keep hiding that receipt
    c = customer(phone="+1415")
    c.run(
        track(T0, "Order Completed"),  # receipt on sms
        track(T0 + H, "Signed Up"),
        track(T0 + 80 * H, "Activated"),  # nudge_day3 went out on sms at T0 + 73 h
        *(track(T0 + 4 * D + i * H, "Fraud Suspected") for i in range(9)),
        track(T0 + 5 * D, "Message Failed", channel="sms"),
    )
    resends = [req.message_id for req, _ in c.decisions if req.resend]
    assert resends == ["c-1:fraud_alert:9:alert:fallback"]


def test_an_on_event_step_does_not_run_at_the_end_of_the_lifetime(ana: Customer) -> None:
    # SPEC §5: an onboarding instance lives 14 days; after them no step runs — and at
    # entry + 14 d an Activated is no conversion, so a Logged In starts no first_login
    ana.run(track(T0, "Signed Up"), track(T0 + 14 * D, "Logged In"))
    assert "onboarding.first_login" not in ana.steps()
    assert ana.status("onboarding") == EXPIRED


def test_an_on_event_step_runs_just_before_the_end_of_the_lifetime(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 14 * D - timedelta(seconds=1), "Logged In"))
    assert "onboarding.first_login" in ana.steps()


# ---- same-instant order ----


def test_timers_due_together_fire_in_the_order_set_after_the_event(ana: Customer) -> None:
    ana.run(
        track(T0, "Signed Up"),  # nudge_day3 set for T0 + 72 h
        track(T0 + 48 * H, "Product Viewed"),  # recommend set for T0 + 72 h
        track(T0 + 72 * H, "Support Ticket Opened"),  # same instant: applied first
    )
    at_72 = [line[2:6] for line in ana.lines() if line[0] == 72 * H]
    assert at_72 == [
        ("nudge_day3", SEND, "whatsapp", None),
        ("recommend", SUPPRESSED, "push", "suppression:support_ticket"),
    ]


def test_first_timer_takes_the_channel_cap_from_the_second(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), track(T0 + 48 * H, "Product Viewed"))
    at_72 = [line[2:5] for line in ana.lines() if line[0] == 72 * H]
    assert at_72 == [("nudge_day3", SEND, "whatsapp"), ("recommend", SEND, "push")]


def test_event_at_a_deferred_sends_instant_is_decided_first() -> None:
    owl = night_owl()
    morning = T0.replace(hour=8) + D
    owl.run(
        track(T0.replace(hour=10), "Price Dropped"),
        track(T0.replace(hour=22), "Price Dropped"),  # deferred to 08:00
        track(morning, "Price Dropped"),  # decided before the deferred one
    )
    at_8 = [(req.message_id, d.outcome, d.reason) for req, d in owl.decisions if req.now == morning]
    assert at_8 == [
        ("c-1:price_drop:3:alert", SEND, None),
        ("c-1:price_drop:2:alert", SUPPRESSED, "cap:all:24h"),
    ]


def test_horizon_stops_timers_at_or_after_it(ana: Customer) -> None:
    ana.run(track(T0, "Signed Up"), horizon=T0 + 72 * H)
    assert ana.steps() == ["onboarding.welcome"]
    ana.run(horizon=T0 + 72 * H + timedelta(seconds=1))
    assert ana.steps() == ["onboarding.welcome", "onboarding.nudge_day3"]


# ---- engagement and consent (SPEC §5, amended 2026-11-30) ----


@pytest.mark.parametrize("body", ["STOP", " stop ", "START", "Yes"])
def test_a_stop_or_start_reply_is_consent_not_engagement(body: str) -> None:
    """A keyword changes the opt-out and leaves the last engagement as it was, so the
    next message is not 'a handoff from their sms reply'."""
    bo = customer(**REACHABLE)
    bo.run(
        track(T0, "Message Opened", channel="email"),
        track(T0 + H, "Inbound Message", channel="sms", body=body),
    )
    assert bo.profile.engagement is not None
    assert (bo.profile.engagement.channel, bo.profile.engagement.action) == ("email", "opened")
    bo.run(track(T0 + 2 * H, "Price Dropped", sku="K1"))
    [(_req, decision)] = bo.decisions
    assert decision.handoff is not None and decision.handoff.action == "opened"


def test_a_reply_that_is_not_a_keyword_is_engagement() -> None:
    bo = customer(**REACHABLE)
    bo.run(track(T0, "Inbound Message", channel="sms", body="where is my parcel?"))
    assert bo.profile.engagement is not None
    assert (bo.profile.engagement.channel, bo.profile.engagement.action) == ("sms", "replied")
