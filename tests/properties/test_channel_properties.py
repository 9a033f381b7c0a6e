"""Properties of the channel rules over random histories and event sequences.

One customer runs through the real journey flow and the pure governor (answered
synchronously, as the governor actor would), with the example config
(`config/examples/channels`) or the shipped one. The checks rebuild what they need
from the generated events themselves, never from the engine's bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.domain.channel_config import ChannelPolicy, EngagementSettings, TopicDef
from omniconsole.domain.channel_rules import ChannelRules
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.flow import CustomerFlow, Effects, TimedEvent
from omniconsole.domain.governor import SEND, CapUsage, Decision, SendRequest, decide, is_capped
from omniconsole.domain.ledger import ledger_line
from omniconsole.domain.profile import Profile

EXAMPLE = load_config(Path(__file__).resolve().parents[2] / "config" / "examples" / "channels")
SHIPPED = load_config(shipped_config_dir())
START = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)
ZONES = ("UTC", "America/New_York", "Asia/Tokyo", "Pacific/Auckland")
TRACKED_CHANNELS = ("email", "sms", "whatsapp", "push")

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Run:
    """One customer through the flow; the ledger lines it produced."""

    config: EngineConfig
    profile: Profile
    usage: CapUsage = field(default_factory=CapUsage)
    lines: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[SendRequest, Decision]] = field(default_factory=list)

    def play(self, events: list[Event]) -> Run:
        flow = CustomerFlow(self.config, with_recipient=False).run(
            self.profile, [TimedEvent(e.at, e) for e in events], None, Effects()
        )
        policy = self.config.policy
        try:
            req = next(flow)
            while True:
                decision = decide(req, policy, self.usage)
                if (
                    decision.outcome == SEND
                    and decision.channel is not None
                    and is_capped(policy, req.category, decision.channel)
                ):
                    self.usage.record(req.now, str(decision.channel))
                outcome = "sent" if decision.outcome == SEND else decision.outcome
                self.lines.append(ledger_line(req, decision, outcome, decision.reason))
                self.requests.append((req, decision))
                req = flow.send(decision)
        except StopIteration:
            pass
        return self


@st.composite
def reachability(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"timezone": draw(st.sampled_from(ZONES))}
    if draw(st.booleans()):
        out["email"] = "ana@example.com"
    if draw(st.booleans()):
        out["phone"] = "+14155550101"
        out["whatsapp_opt_in"] = draw(st.booleans())
    if draw(st.booleans()):
        out["push_token"] = "tok-1"
    if draw(st.booleans()):
        out["preferred_channel"] = draw(st.sampled_from(TRACKED_CHANNELS))
    return out


def times(n_max: int, span_hours: int) -> st.SearchStrategy[list[datetime]]:
    return st.lists(st.integers(0, span_hours * 60), min_size=1, max_size=n_max, unique=True).map(
        lambda minutes: [START + timedelta(minutes=m) for m in sorted(minutes)]
    )


# ---- affinity never picks an unusable channel ----


@st.composite
def histories(draw: st.DrawFn) -> ChannelState:
    now = int(START.timestamp())
    sends = sorted(
        draw(
            st.lists(
                st.tuples(st.integers(1, 40 * 86400), st.sampled_from(TRACKED_CHANNELS)),
                max_size=20,
            )
        )
    )
    engaged = sorted(
        draw(
            st.lists(
                st.tuples(
                    st.integers(1, 40 * 86400),
                    st.sampled_from(TRACKED_CHANNELS),
                    st.sampled_from(("", "m-1", "m-2")),
                ),
                max_size=20,
            )
        )
    )
    return ChannelState(
        [(now - ago, ch) for ago, ch in reversed(sends)],
        [(now - ago, ch, m) for ago, ch, m in reversed(engaged)],
    )


@PROPERTY
@given(
    traits=reachability(),
    state=histories(),
    full=st.sets(st.sampled_from(("sms", "whatsapp"))),
    mode=st.sampled_from((None, "switch", "defer", "suppress")),
    hour=st.integers(0, 23),
)
def test_affinity_never_picks_an_unusable_channel_nor_nothing_while_one_can_go(
    traits: dict[str, Any], state: ChannelState, full: set[str], mode: str | None, hour: int
) -> None:
    journey = next(j for j in EXAMPLE.journeys if j.name == "onboarding")
    step = journey.step("nudge_day3")  # select = "affinity" over whatsapp, push, sms, email
    rules = ChannelRules(EXAMPLE)
    profile = Profile("c-1", traits=dict(traits), channel_state=state)
    now = START + hour * H
    usable = profile.usable_channels(step.channels, journey.category)
    usable, plan, _ = rules.plan(profile, journey, step, "m", step.channels, usable, now,
                                 resend=False, fresh=True, joined=None, props={})  # fmt: skip
    assert plan is not None and plan.order is not None
    plan.on_block = mode
    usage = CapUsage(sorted((now - H, ch) for ch in full))
    req = SendRequest("c-1", 1, "m", journey.name, 1, step.name, Category.LIFECYCLE,
                      step.channels, usable, profile.preferred_channel, profile.timezone, now,
                      now, {}, None, plan=plan)  # fmt: skip
    decision = decide(req, EXAMPLE.policy, usage)
    if decision.channel is not None:
        assert decision.channel in usable
    can_go = [c for c in usable if str(c) not in full]
    if can_go and mode in (None, "switch"):
        assert decision.channel is not None, decision.explanation


# ---- a digest never loses a trigger ----


@PROPERTY
@given(traits=reachability(), at=times(8, 48), ticket=st.booleans())
def test_a_digest_never_loses_a_trigger(
    traits: dict[str, Any], at: list[datetime], ticket: bool
) -> None:
    events = [Event("track", "c-1", t, name="Price Dropped", properties={"sku": f"S{i}"})
              for i, t in enumerate(at)]  # fmt: skip
    if ticket:
        events.append(Event("track", "c-1", at[0] + 30 * timedelta(minutes=1),
                            name="Support Ticket Opened"))  # fmt: skip
        events.sort(key=lambda e: e.at)
    run = Run(EXAMPLE, Profile("c-1", traits=dict(traits))).play(events)
    lines = [ln for ln in run.lines if ln["journey"] == "price_drop"]
    finals: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line["outcome"] != "deferred":
            assert line["message_id"] not in finals, "one final line per message"
            finals[line["message_id"]] = line
    triggers = [f"c-1:price_drop:{n}:alert" for n in range(1, len(at) + 1)]
    assert set(finals) == set(triggers), "every trigger has a final line"
    for mid in triggers:
        line = finals[mid]
        if line["outcome"] == "digested":
            digest = finals[line["joined"]]
            assert digest["outcome"] != "digested"
            assert mid in digest["digest"]["joined"]
    for line in finals.values():
        if "digest" in line and line["outcome"] != "digested":
            assert line["digest"]["items"] == 1 + len(line["digest"]["joined"])


# ---- no send on an opted-out topic ----


@st.composite
def topic_events(draw: st.DrawFn) -> list[Event]:
    at = draw(times(14, 96))
    out = []
    for t in at:
        kind = draw(st.sampled_from(("choice", "trait", "Price Dropped", "Product Viewed")))
        topic = draw(st.sampled_from(("deals", "recommendations")))
        channel = draw(st.sampled_from(("all", *TRACKED_CHANNELS)))
        on = draw(st.booleans())
        if kind == "choice":
            props = {"topic": topic} if channel == "all" and draw(st.booleans()) else {
                "topic": topic, "channel": channel}  # fmt: skip
            out.append(Event("track", "c-1", t, name="Subscribed" if on else "Unsubscribed",
                             properties=props))  # fmt: skip
        elif kind == "trait":
            value: Any = on if channel == "all" else {channel: on}
            out.append(Event("identify", "c-1", t, traits={"topics": {topic: value}}))
        else:
            out.append(Event("track", "c-1", t, name=kind, properties={}))
    return out


def topic_on(events: list[Event], topic: TopicDef, channel: str, before: datetime) -> bool:
    """The customer's choice at `before`, rebuilt from the events: latest wins."""
    on = channel not in topic.default_off
    for event in events:
        if event.at > before:
            break
        if event.kind == "identify":
            value = event.traits["topics"].get(topic.name)
            if isinstance(value, bool):
                on = value
            elif isinstance(value, dict) and channel in value:
                on = value[channel]
        elif event.properties.get("topic") == topic.name:
            scope = event.properties.get("channel", "all")
            if scope in ("all", channel):
                on = event.name == "Subscribed"
    return on


@PROPERTY
@given(traits=reachability(), events=topic_events())
def test_no_send_on_a_topic_the_customer_turned_off(
    traits: dict[str, Any], events: list[Event]
) -> None:
    run = Run(EXAMPLE, Profile("c-1", traits=dict(traits))).play(events)
    chan = EXAMPLE.policy.channel_policy
    assert chan is not None
    topic_of = {j.name: chan.topic(j.topic) for j in EXAMPLE.journeys if j.topic}
    for line in run.lines:
        topic = topic_of.get(line["journey"])
        if line["outcome"] == "sent" and topic is not None and line["category"] != "transactional":
            at = datetime.fromisoformat(line["at"])
            assert topic_on(events, topic, line["channel"], at), line


# ---- channel state recorded but unused changes nothing ----


@st.composite
def shipped_events(draw: st.DrawFn) -> list[Event]:
    at = draw(times(16, 24 * 10))
    names = ("Signed Up", "Logged In", "Activated", "Product Viewed", "Order Completed",
             "Price Dropped", "Fraud Suspected", "Support Ticket Opened", "Message Opened",
             "Message Clicked", "Inbound Message", "Unsubscribed", "Subscribed", "Message Failed")  # fmt: skip
    out = []
    for t in at:
        name = draw(st.sampled_from(names))
        props = {"channel": draw(st.sampled_from(TRACKED_CHANNELS))}
        if name == "Inbound Message":
            props["body"] = draw(st.sampled_from(("hi", "STOP", "start")))
        out.append(Event("track", "c-1", t, name=name, properties=props))
    return out


def neutral(config: EngineConfig) -> EngineConfig:
    """`config` recording history and knowing a topic no journey is in: no rule applies."""
    engagement = EngagementSettings(timedelta(days=30), "30d", 4.0, ((Channel.EMAIL, 0.2),), 18, 3)
    policy = config.policy
    chan = ChannelPolicy(engagement=engagement, topics=(TopicDef("news", "News", frozenset()),))
    from dataclasses import replace

    return replace(config, policy=replace(policy, channel_policy=chan))


@PROPERTY
@given(traits=reachability(), events=shipped_events())
def test_history_recorded_by_an_unused_rule_changes_no_decision(
    traits: dict[str, Any], events: list[Event]
) -> None:
    plain = Run(SHIPPED, Profile("c-1", traits=dict(traits))).play(events)
    recording = Run(neutral(SHIPPED), Profile("c-1", traits=dict(traits))).play(events)
    assert recording.lines == plain.lines
    assert all(req.plan is None for req, _ in plain.requests)


# ---- the planned path with no rule is SPEC §4 ----


@st.composite
def spec_requests(draw: st.DrawFn) -> tuple[SendRequest, CapUsage]:
    channels = tuple(draw(st.lists(st.sampled_from(tuple(Channel)), min_size=1, max_size=4,
                                   unique=True)))  # fmt: skip
    usable = frozenset(draw(st.sets(st.sampled_from(channels))))
    now = START + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    category = draw(st.sampled_from(tuple(Category)))
    sends = sorted(
        (now - timedelta(minutes=m), draw(st.sampled_from(TRACKED_CHANNELS)))
        for m in draw(st.lists(st.integers(1, 8 * 24 * 60), max_size=6))
    )
    ticket = draw(st.one_of(st.none(), st.integers(0, 72)))
    events = {} if ticket is None else {"Support Ticket Opened": now - ticket * H}
    req = SendRequest(
        "c-1", 1, "m", "j", 1, "s", category, channels, usable,
        draw(st.one_of(st.none(), st.sampled_from(TRACKED_CHANNELS))),
        draw(st.sampled_from(ZONES)), now,
        now - timedelta(hours=draw(st.integers(0, 60))), events, None,
    )  # fmt: skip
    return req, CapUsage(sends)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=spec_requests())
def test_an_empty_plan_decides_exactly_as_the_spec(case: tuple[SendRequest, CapUsage]) -> None:
    """The planned path orders SPEC §4's step functions its own way (`domain.selection`);
    with no rule it must decide as `decide` does, to the letter."""
    from copy import deepcopy
    from dataclasses import replace

    from omniconsole.domain.channel_plan import ChannelPlan

    req, usage = case
    spec = decide(req, SHIPPED.policy, deepcopy(usage))
    planned = decide(replace(req, plan=ChannelPlan()), SHIPPED.policy, deepcopy(usage))
    assert planned == spec
