"""Control groups and variants in the journey rules and the governor's decision.

A held-out step is decided as usual (channel, suppression, quiet hours, caps) and, where
it would be sent, its final line is `held_out`: nothing goes out and no cap counts it.
A variant changes some steps' channels and timing for its share of the treated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omniconsole.domain.assignment import HOLDOUT_GLOBAL, HOLDOUT_JOURNEY, Arm, Assigner
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.experiments import ControlGroup
from omniconsole.domain.flow import CONVERTED, CustomerFlow, Effects, TimedEvent
from omniconsole.domain.governor import (
    DEFERRED,
    HELD_OUT,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    decide,
    is_capped,
)
from omniconsole.domain.ledger import ledger_line
from omniconsole.domain.profile import Profile

EXAMPLE: EngineConfig = load_config(shipped_config_dir() / "examples" / "holdouts")
POLICY = EXAMPLE.policy
ASSIGNER = Assigner(EXAMPLE)
ONBOARDING = next(j for j in EXAMPLE.journeys if j.name == "onboarding")
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
H = timedelta(hours=1)
D = timedelta(days=1)
REACHABLE: dict[str, Any] = {
    "email": "ana@example.com",
    "phone": "+14155550101",
    "whatsapp_opt_in": True,
    "push_token": "tok-1",
}


def first_customer(arm: str | None) -> str:
    """The first `c-N` whose onboarding arm is `arm`."""
    for n in range(10_000):
        customer = f"c-{n}"
        if ASSIGNER.arm_name(customer, ONBOARDING) == arm:
            return customer
    raise AssertionError(f"nobody in {arm}")


@dataclass
class Customer:
    """One customer through the flow, with the governor actor's rule for cap usage."""

    profile: Profile
    flow: CustomerFlow = field(default_factory=lambda: CustomerFlow(EXAMPLE, with_recipient=False))
    usage: CapUsage = field(default_factory=CapUsage)
    effects: Effects = field(default_factory=Effects)
    decisions: list[tuple[SendRequest, Decision]] = field(default_factory=list)

    def run(self, *events: tuple[datetime, str], horizon: datetime | None = None) -> None:
        timed = [
            TimedEvent(at, Event("track", self.profile.customer, at, name=name))
            for at, name in events
        ]
        flow = self.flow.run(self.profile, timed, horizon, self.effects)
        try:
            req = next(flow)
            while True:
                decision = decide(req, POLICY, self.usage)
                channel = decision.channel
                if (
                    decision.outcome == SEND
                    and channel
                    and is_capped(POLICY, req.category, channel)
                ):
                    self.usage.record(req.now, str(channel))
                self.decisions.append((req, decision))
                req = flow.send(decision)
        except StopIteration:
            pass

    def lines(self) -> list[tuple[Any, ...]]:
        return [
            (r.now - T0, r.step, d.outcome, None if d.channel is None else str(d.channel), d.reason)
            for r, d in self.decisions
        ]


def customer(arm: str | None, **traits: Any) -> Customer:
    return Customer(Profile(first_customer(arm), traits={**REACHABLE, **traits}))


def test_a_customer_in_the_journeys_control_group_gets_nothing_yet_every_step_is_decided() -> None:
    ana = customer(HOLDOUT_JOURNEY)
    ana.run((T0, "Signed Up"), (T0 + 2 * H, "Logged In"))
    assert ana.lines() == [
        (timedelta(0), "welcome", HELD_OUT, "email", HOLDOUT_JOURNEY),
        (2 * H, "first_login", HELD_OUT, "in_app", HOLDOUT_JOURNEY),
        (72 * H, "nudge_day3", HELD_OUT, "whatsapp", HOLDOUT_JOURNEY),
        (168 * H, "nudge_day7", HELD_OUT, "sms", HOLDOUT_JOURNEY),
    ]
    assert ana.usage.sends == []  # nothing counted against any cap


def test_a_held_out_step_in_quiet_hours_is_deferred_first_then_held_out() -> None:
    ana = customer(HOLDOUT_JOURNEY, timezone="Asia/Tokyo")  # 10:00 UTC is 19:00 in Tokyo
    ana.run((T0 + 3 * H, "Signed Up"))  # nudge_day3 comes due at 22:00 Tokyo time
    nudges = [line for line in ana.lines() if line[1] == "nudge_day3"]
    assert nudges == [
        (75 * H, "nudge_day3", DEFERRED, "whatsapp", "quiet_hours"),
        (85 * H, "nudge_day3", HELD_OUT, "whatsapp", HOLDOUT_JOURNEY),
    ]


def test_a_control_customer_who_activates_still_converts_and_the_nudges_are_skipped() -> None:
    ana = customer(HOLDOUT_JOURNEY)
    ana.run((T0, "Signed Up"), (T0 + D, "Activated"))
    assert [line[1] for line in ana.lines()] == ["welcome"]
    rows = {(r.journey, r.instance): r.status for r in ana.effects.rows()}
    assert rows[("onboarding", 1)] == CONVERTED


def test_variant_b_nudges_after_48_hours_on_email_or_push_and_the_line_names_it() -> None:
    ben = customer("b", preferred_channel="whatsapp")
    ben.run((T0, "Signed Up"))
    assert ben.lines()[:2] == [
        (timedelta(0), "welcome", SEND, "email", None),
        (48 * H, "nudge_day3", SEND, "email", None),  # whatsapp is not in b's list
    ]
    req, decision = ben.decisions[1]
    assert ledger_line(req, decision, "sent", None)["variant"] == "b"


def test_the_base_variant_keeps_the_journey_as_written_and_the_line_says_base() -> None:
    cleo = customer("base")
    cleo.run((T0, "Signed Up"))
    assert [line[:2] for line in cleo.lines()] == [
        (timedelta(0), "welcome"),
        (72 * H, "nudge_day3"),
        (168 * H, "nudge_day7"),
    ]
    req, decision = cleo.decisions[1]
    assert ledger_line(req, decision, "sent", None)["variant"] == "base"


def test_a_journey_without_variants_writes_no_variant_key() -> None:
    shipped = CustomerFlow(load_config(shipped_config_dir()), with_recipient=False)
    dana = Customer(Profile("c-1", traits=dict(REACHABLE)), flow=shipped)
    dana.run((T0, "Signed Up"))
    req, decision = dana.decisions[0]
    assert req.arm is None
    assert "variant" not in ledger_line(req, decision, "sent", None)


def test_the_arm_survives_the_profiles_round_trip_through_the_store() -> None:
    ben = customer("b")
    ben.run((T0, "Signed Up"), horizon=T0 + H)
    restored = Profile.loads(ben.profile.dumps())
    assert [i.arm for i in restored.instances] == ["b"]


# ---- the governor's decision ----

HELD = Arm(HOLDOUT_GLOBAL, True, None)


def request(arm: Arm | None, *, now: datetime = T0, category: Category = Category.LIFECYCLE,
            channels: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL)) -> SendRequest:  # fmt: skip
    return SendRequest(
        customer="c-1", seq=1, message_id="c-1:j:1:s", journey="j", instance=1, step="s",
        category=category, channels=channels, usable=frozenset(channels), preferred=None,
        timezone="UTC", now=now, first_due=now, event_times={}, engagement=None, arm=arm,
    )  # fmt: skip


def test_a_held_out_send_names_its_group_and_the_channel_it_would_have_used() -> None:
    decision = decide(request(HELD), POLICY, CapUsage())
    assert (decision.outcome, decision.channel, decision.reason) == (
        HELD_OUT,
        Channel.SMS,
        HOLDOUT_GLOBAL,
    )
    assert "global control group" in decision.explanation


def test_a_held_out_promotional_send_over_the_cap_is_suppressed_as_any_other() -> None:
    usage = CapUsage([(T0 - 2 * H, "email"), (T0 - H, "email")])
    decision = decide(request(HELD, category=Category.PROMOTIONAL), POLICY, usage)
    assert (decision.outcome, decision.reason) == (SUPPRESSED, "cap:all:24h")


# ---- held-out steps never count against caps ----

CATEGORIES = st.sampled_from((Category.LIFECYCLE, Category.PROMOTIONAL, Category.TRANSACTIONAL))
CHANNEL_LISTS = st.lists(st.sampled_from(tuple(Channel)), min_size=1, max_size=3, unique=True)


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[SendRequest, bool]]:
    """One customer's send requests in time order, some of them held out."""
    at = T0
    out: list[tuple[SendRequest, bool]] = []
    for n in range(draw(st.integers(1, 30))):
        at += timedelta(minutes=draw(st.integers(0, 36 * 60)))
        held = draw(st.booleans())
        arm = Arm(HOLDOUT_JOURNEY, True, None) if held else None
        req = replace(
            request(arm, now=at, category=draw(CATEGORIES), channels=tuple(draw(CHANNEL_LISTS))),
            seq=n,
        )
        out.append((req, held))
    return out


def governed(requests: list[SendRequest]) -> list[Decision]:
    """Decide each request in order with the governor actor's rule for cap usage."""
    usage = CapUsage()
    decisions = []
    for req in requests:
        decision = decide(req, POLICY, usage)
        channel = decision.channel
        if decision.outcome == SEND and channel and is_capped(POLICY, req.category, channel):
            usage.record(req.now, str(channel))
        decisions.append(decision)
    return decisions


@settings(max_examples=200, deadline=None)
@given(streams())
def test_held_out_steps_change_nothing_for_the_customers_other_messages(
    stream: list[tuple[SendRequest, bool]],
) -> None:
    everything = governed([req for req, _ in stream])
    without_held = governed([req for req, held in stream if not held])
    treated = [d for d, (_, held) in zip(everything, stream, strict=True) if not held]
    assert [(d.outcome, d.channel, d.reason, d.until) for d in treated] == [
        (d.outcome, d.channel, d.reason, d.until) for d in without_held
    ]
    assert all(d.outcome != SEND for d, (_, held) in zip(everything, stream, strict=True) if held)


def test_a_held_out_step_in_the_global_group_needs_the_global_control_in_the_policy() -> None:
    # the global group is the policy's: with it off, the same customer is treated
    off = replace(EXAMPLE, policy=replace(POLICY, global_control=None))
    on = replace(EXAMPLE, policy=replace(POLICY, global_control=ControlGroup(0.999, "x")))
    assert Assigner(on).arm_name("c-1", ONBOARDING) == HOLDOUT_GLOBAL
    assert Assigner(off).arm_name("c-1", ONBOARDING) != HOLDOUT_GLOBAL
