"""Channel rules on one customer through the journey flow, with the example config
(`config/examples/channels`): what the customer does feeds affinity, best hours and
topic choices, and digests collect triggers.

As in `test_flow.py`, the flow is driven synchronously: each request is answered with
the pure `decide`, and an allowed capped send is recorded as the governor actor does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omniconsole.domain.channel_plan import DIGESTED
from omniconsole.domain.config import EngineConfig, load_config
from omniconsole.domain.events import Event
from omniconsole.domain.flow import CustomerFlow, Effects, TimedEvent
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
from omniconsole.domain.ledger import ledger_line
from omniconsole.domain.profile import Profile

EXAMPLE: EngineConfig = load_config(
    Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"
)
T0 = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)  # noon UTC: no quiet hours
H = timedelta(hours=1)
D = timedelta(days=1)
PUSH_AND_EMAIL: dict[str, Any] = {"email": "ana@example.com", "push_token": "tok-1"}


def track(at: datetime, name: str, **props: Any) -> Event:
    return Event("track", "c-1", at, name=name, properties=props)


def identify(at: datetime, **traits: Any) -> Event:
    return Event("identify", "c-1", at, traits=traits)


@dataclass
class Customer:
    profile: Profile
    config: EngineConfig = EXAMPLE
    usage: CapUsage = field(default_factory=CapUsage)
    effects: Effects = field(default_factory=Effects)
    decisions: list[tuple[SendRequest, Decision]] = field(default_factory=list)

    def run(self, *events: Event, horizon: datetime | None = None) -> None:
        flow_rules = CustomerFlow(self.config, with_recipient=False)
        flow = flow_rules.run(self.profile, [TimedEvent(e.at, e) for e in events], horizon,
                              self.effects)  # fmt: skip
        policy = self.config.policy
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

    def lines(self, journey: str | None = None) -> list[dict[str, Any]]:
        """The ledger lines of the decisions so far (final outcome as decided)."""
        out = []
        for req, d in self.decisions:
            if journey is None or req.journey == journey:
                outcome = "sent" if d.outcome == SEND else d.outcome
                out.append(ledger_line(req, d, outcome, d.reason))
        return out

    def passivate(self) -> None:
        """As the shard does: the profile leaves memory as JSON and comes back."""
        self.profile = Profile.loads(self.profile.dumps())


def customer(**traits: Any) -> Customer:
    return Customer(Profile("c-1", traits=dict(traits)))


def drops(c: Customer, *offsets: timedelta, horizon: datetime | None = None) -> None:
    c.run(
        *(track(T0 + o, "Price Dropped", sku=f"SKU-{i}") for i, o in enumerate(offsets)),
        horizon=horizon,
    )


# ---- digests ----


def test_price_drops_within_six_hours_become_one_message_listing_each() -> None:
    c = customer(**PUSH_AND_EMAIL)
    drops(c, timedelta(0), H, 2 * H)
    c.run(horizon=T0 + 7 * H)
    lines = c.lines("price_drop")
    first = "c-1:price_drop:1:alert"
    assert [(ln["message_id"], ln["outcome"], ln["reason"]) for ln in lines] == [
        (first, "deferred", "digest:6h"),
        ("c-1:price_drop:2:alert", DIGESTED, "digest:6h"),
        ("c-1:price_drop:3:alert", DIGESTED, "digest:6h"),
        (first, "sent", None),
    ]
    assert lines[1]["joined"] == lines[2]["joined"] == first
    assert lines[3]["at"] == "2026-02-02T18:00:00Z"
    assert lines[3]["digest"] == {
        "window": "6h",
        "items": 3,
        "joined": ["c-1:price_drop:2:alert", "c-1:price_drop:3:alert"],
    }
    sent_req = c.decisions[-1][0]
    assert [item["sku"] for item in sent_req.properties["items"]] == ["SKU-0", "SKU-1", "SKU-2"]


def test_a_digest_counts_once_against_the_caps() -> None:
    c = customer(**PUSH_AND_EMAIL)
    drops(c, timedelta(0), H, 2 * H)
    c.run(horizon=T0 + 7 * H)
    assert len(c.usage.sends) == 1


def test_a_trigger_after_the_window_opens_a_new_digest() -> None:
    c = customer(**PUSH_AND_EMAIL)
    drops(c, timedelta(0), 7 * H)
    c.run(horizon=T0 + 2 * D)
    opened = [ln["message_id"] for ln in c.lines() if ln["reason"] == "digest:6h"]
    assert opened == ["c-1:price_drop:1:alert", "c-1:price_drop:2:alert"]
    assert [ln["outcome"] for ln in c.lines()].count("sent") == 2


def test_an_open_digest_survives_the_profile_leaving_memory() -> None:
    c = customer(**PUSH_AND_EMAIL)
    drops(c, timedelta(0), horizon=T0 + H)
    c.passivate()
    c.run(track(T0 + H, "Price Dropped", sku="SKU-9"), horizon=T0 + 2 * H)
    c.passivate()
    c.run(horizon=T0 + D)
    final = c.lines()[-1]
    assert final["outcome"] == "sent" and final["digest"]["items"] == 2
    assert c.profile.channel_state is not None and c.profile.channel_state.digests == []


# ---- topics ----


def test_an_unsubscribe_from_a_topic_withdraws_consent_for_its_journeys_only() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(track(T0, "Unsubscribed", topic="deals"), track(T0 + H, "Price Dropped"))
    c.run(horizon=T0 + D)
    (line,) = c.lines("price_drop")
    assert (line["outcome"], line["reason"]) == ("suppressed", "consent:topic:deals")
    assert c.profile.opted_out == set(), "the channels themselves stay consented"
    c.run(track(T0 + D, "Signed Up"))
    assert c.lines("onboarding")[0]["outcome"] == "sent"


def test_a_topic_off_on_one_channel_goes_to_another() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(track(T0, "Unsubscribed", topic="deals", channel="email"))
    c.run(track(T0 + H, "Price Dropped"), horizon=T0 + D)
    final = c.lines("price_drop")[-1]
    assert (final["outcome"], final["channel"]) == ("sent", "push")
    assert final["topic_off"] == {"topic": "deals", "channels": ["email"]}


def test_subscribing_to_a_topic_again_restores_it() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(track(T0, "Unsubscribed", topic="deals"), track(T0 + H, "Subscribed", topic="deals"))
    c.run(track(T0 + 2 * H, "Price Dropped"), horizon=T0 + D)
    assert c.lines("price_drop")[-1]["outcome"] == "sent"


def test_identify_traits_set_topic_choices_per_channel() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(identify(T0, topics={"deals": False}), track(T0 + H, "Price Dropped"))
    assert c.lines("price_drop")[-1]["reason"] == "consent:topic:deals"
    c.run(identify(T0 + 2 * H, topics={"deals": {"email": True}}))
    c.run(track(T0 + 3 * H, "Price Dropped"), horizon=T0 + D)
    final = c.lines("price_drop")[-1]
    assert (final["outcome"], final["channel"]) == ("sent", "email")


def test_a_transactional_topic_cannot_be_turned_off() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(
        track(T0, "Unsubscribed", topic="account"),
        identify(T0, topics={"account": False}),
        track(T0 + H, "Fraud Suspected"),
    )
    (line,) = c.lines("fraud_alert")
    assert line["outcome"] == "sent"
    assert c.profile.opted_out == set()


def test_a_topic_the_config_does_not_know_is_a_channel_unsubscribe() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(track(T0, "Unsubscribed", topic="weekly-news", channel="email"))
    assert c.profile.opted_out == {"email"}


def test_a_topic_off_by_default_needs_the_customer_to_turn_it_on() -> None:
    c = customer(phone="+14155550101", whatsapp_opt_in=True)
    c.run(track(T0, "Product Viewed"), horizon=T0 + 3 * D)
    (line,) = c.lines("product_recommendation")
    assert line["reason"] == "consent:topic:recommendations"
    c.run(
        track(T0 + 3 * D, "Subscribed", topic="recommendations", channel="whatsapp"),
        track(T0 + 3 * D, "Product Viewed"),
    )
    c.run(horizon=T0 + 6 * D)
    assert c.lines("product_recommendation")[-1]["channel"] == "whatsapp"


# ---- affinity ----


def test_engagement_on_a_channel_raises_its_affinity() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(*(track(T0 - i * H, "Message Opened", channel="push") for i in (3, 2, 1)))
    c.run(track(T0, "Price Dropped"), horizon=T0 + D)
    final = c.lines("price_drop")[-1]
    assert final["channel"] == "push"
    assert final["affinity"]["push"] > final["affinity"]["email"]


def test_messages_ignored_on_a_channel_lower_its_affinity() -> None:
    c = customer(**PUSH_AND_EMAIL)
    c.run(track(T0, "Price Dropped"), horizon=T0 + D)
    assert c.lines("price_drop")[-1]["channel"] == "email"  # the population's rates
    for day in range(1, 6):
        c.run(track(T0 + day * D, "Price Dropped"), horizon=T0 + (day + 1) * D)
    channels = [ln["channel"] for ln in c.lines("price_drop") if ln["outcome"] == "sent"]
    assert channels[-1] == "push", channels


def test_a_stop_reply_is_consent_not_engagement() -> None:
    c = customer(phone="+14155550101")
    c.run(track(T0, "Inbound Message", channel="sms", body="STOP"))
    state = c.profile.channel_state
    assert state is None or state.engaged == []
    c.run(track(T0 + H, "Inbound Message", channel="sms", body="what time do you open?"))
    state = c.profile.channel_state
    assert state is not None and [e[1] for e in state.engaged] == ["sms"]


def test_a_stated_preference_outranks_affinity() -> None:
    c = customer(preferred_channel="email", **PUSH_AND_EMAIL)
    c.run(*(track(T0 - i * H, "Message Clicked", channel="push") for i in (3, 2, 1)))
    c.run(track(T0, "Price Dropped"), horizon=T0 + D)
    assert c.lines("price_drop")[-1]["channel"] == "email"


# ---- send time ----


def test_a_recommendation_waits_for_the_customers_most_engaged_hour() -> None:
    c = customer(timezone="America/New_York", **PUSH_AND_EMAIL)
    # three opens at 19:xx New York time (00:xx UTC)
    c.run(*(track(T0 - d * D + 12 * H + 10 * d * timedelta(minutes=1), "Message Opened",
                  channel="email") for d in (3, 2, 1)))  # fmt: skip
    c.run(track(T0, "Product Viewed"), horizon=T0 + 3 * D)
    deferred, sent = c.lines("product_recommendation")
    assert (deferred["outcome"], deferred["reason"]) == ("deferred", "send_time:best_hour")
    assert deferred["send_at"] == {"hour": "19:00", "basis": "customer", "engagements": 3}
    assert sent["outcome"] == "sent" and sent["at"] == "2026-02-04T00:00:00Z"


def test_without_history_the_population_hour_is_used() -> None:
    c = customer(timezone="UTC", **PUSH_AND_EMAIL)
    c.run(track(T0, "Product Viewed"), horizon=T0 + 3 * D)
    deferred, sent = c.lines("product_recommendation")
    assert deferred["send_at"]["basis"] == "population"
    assert sent["at"] == "2026-02-03T18:00:00Z"


def test_the_shipped_config_records_no_channel_state() -> None:
    from omniconsole.domain.config import shipped_config_dir

    c = Customer(Profile("c-1", traits=dict(PUSH_AND_EMAIL)), load_config(shipped_config_dir()))
    c.run(
        track(T0, "Message Opened", channel="email"),
        track(T0, "Unsubscribed", topic="deals", channel="push"),
        track(T0 + H, "Price Dropped"),
    )
    assert c.profile.channel_state is None
    assert all(req.plan is None for req, _ in c.decisions)
    assert c.profile.opted_out == {"push"}, "without topics, a topic unsubscribe is the channel's"
    assert all(d.outcome in (SEND, DEFERRED, SUPPRESSED) for _, d in c.decisions)
