"""One customer re-run with a trace: what each stage of the governor saw, in words.

`trace_customer` drives the journey rules the engine runs; these tests read the words
a support agent would read for a channel that was not usable, a channel's own cap, an
entry that was refused, and check that the re-run's lines are the flow's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.explanation import CustomerTrace, step_fate, trace_customer
from omniconsole.domain.flow import TimedEvent

CONFIG = load_config(shipped_config_dir())
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
H = timedelta(hours=1)


def event(at: datetime, name: str | None, n: int, **fields: Any) -> TimedEvent:
    kind = "identify" if name is None else "track"
    return TimedEvent(
        at, Event(kind, "c-1", at, name, fields.pop("traits", {}), fields, f"m-{n}", n)
    )


def run(*events: TimedEvent) -> CustomerTrace:
    return trace_customer(CONFIG, "c-1", list(events), None)


REACHABLE = {"email": "a@example.com", "phone": "+14155550100", "whatsapp_opt_in": True,
             "push_token": "tok"}  # fmt: skip


def test_an_opted_out_channel_names_the_event_that_opted_the_customer_out() -> None:
    trace = run(
        event(T0, None, 1, traits=REACHABLE),
        event(T0 + H, "Unsubscribed", 2, channel="push"),
        event(T0 + 2 * H, "Price Dropped", 3, sku="a"),
    )
    [decision] = trace.decisions
    push = decision.stages.channels[0]
    assert push.channel == "push" and not push.usable
    assert push.words == (
        "not usable: opted out of push by Unsubscribed at 2026-03-02T13:00:00Z (m-2, log line 2)"
    )
    assert decision.stages.chosen == "whatsapp"


def test_a_channels_own_cap_lists_the_send_that_filled_it() -> None:
    trace = run(
        event(T0, None, 1, traits={"phone": "+14155550100", "whatsapp_opt_in": True}),
        event(T0 + H, "Price Dropped", 2, sku="a"),
        event(T0 + 2 * H, "Price Dropped", 3, sku="b"),
    )
    first, second = trace.decisions
    assert (first.outcome, first.stages.chosen) == ("sent", "whatsapp")
    whatsapp = second.stages.channels[1]
    assert not whatsapp.usable
    assert whatsapp.cap is not None and whatsapp.cap.reason == "cap:whatsapp:24h"
    assert [s.message_id for s in whatsapp.cap.counted] == ["c-1:price_drop:1:alert"]
    assert (second.outcome, second.reason) == ("suppressed", "cap:whatsapp:24h")


def test_a_second_sign_up_is_a_refused_entry_and_instance_two_never_existed() -> None:
    trace = run(
        event(T0, None, 1, traits={"email": "a@example.com"}),
        event(T0 + H, "Signed Up", 2),
        event(T0 + 2 * H, "Signed Up", 3),
    )
    [refusal] = trace.refusals
    assert refusal.journey == "onboarding"
    assert refusal.words == "onboarding is entered once per customer, and this customer already was"
    onboarding = next(j for j in CONFIG.journeys if j.name == "onboarding")
    assert step_fate(trace, onboarding, 2, "welcome") == (
        "instance #2 of onboarding never existed: the customer entered it 1 time(s); "
        "Signed Up at 2026-03-02T14:00:00Z (m-3, log line 3) started nothing: "
        "onboarding is entered once per customer, and this customer already was"
    )


def test_the_trace_of_every_decision_leads_to_the_governors_answer() -> None:
    trace = run(
        event(T0, None, 1, traits={**REACHABLE, "timezone": "Asia/Tokyo"}),
        event(T0, "Signed Up", 2),
        *(event(T0 + n * H, "Price Dropped", 3 + n, sku=str(n)) for n in range(1, 6)),
        event(T0 + 7 * H, "Support Ticket Opened", 9),
        event(T0 + 8 * H, "Price Dropped", 10, sku="z"),
    )
    assert trace.disagreements == []
    outcomes = {(d.outcome, d.reason) for d in trace.decisions}
    assert ("deferred", "quiet_hours") in outcomes
    assert ("suppressed", "suppression:support_ticket") in outcomes
