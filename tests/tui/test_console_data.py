"""The console's data layer against stores the engine wrote (see `worlds.STORY`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from live_world import start_live
from worlds import identify, track

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.console_rows import CustomerRecord
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.tui import present


def test_a_missing_store_is_waited_for_and_never_created(tmp_path: Path) -> None:
    status = ConsoleReader(tmp_path / "nope.db").status()
    assert status.state == "missing"
    assert "does not exist yet" in present.status_message(status)
    assert not (tmp_path / "nope.db").exists()


def test_a_store_being_created_is_waited_for(tmp_path: Path) -> None:
    (tmp_path / "new.db").touch()
    assert ConsoleReader(tmp_path / "new.db").status().state == "creating"


def test_the_status_is_the_committed_cuts(story: Path) -> None:
    status = ConsoleReader(story).status()
    assert (status.state, status.mode) == ("ready", "replay")
    assert (status.customers, status.decisions, status.checkpoint_line) == (6, 12, 21)


def test_journeys_list_the_stored_definitions_with_the_engines_counts(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        stats = {j.name: j for j in cut.journeys()}
    onboarding = stats["onboarding"]
    assert (onboarding.entered, onboarding.active, onboarding.converted) == (2, 1, 1)
    assert onboarding.conversion_rate == 0.5
    assert [s.step for s in onboarding.steps] == ["welcome", "first_login", "nudge_day3",
                                                  "nudge_day7"]  # fmt: skip
    assert {s.step: s.waiting for s in onboarding.steps}["nudge_day7"] == 1
    assert stats["price_drop"].exited == 3
    entered_hours = sum(stats["onboarding"].entries_series)
    assert entered_hours == 0  # both entered more than 48 simulated hours before the clock


def test_caps_read_the_policy_through_the_domains_own_type(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        caps = cut.caps()
    assert caps.policy == load_config(shipped_config_dir()).policy
    at_cap = {s.cap.reason: (s.customers_at_cap, s.customers_counted) for s in caps.caps}
    assert at_cap == {
        "cap:all:24h": (0, 2),
        "cap:all:7d": (0, 2),
        "cap:sms:24h": (1, 1),
        "cap:whatsapp:24h": (1, 1),
    }
    assert {r.reason: (r.deferred, r.suppressed) for r in caps.reasons} == {
        "cap:all:24h": (0, 1),
        "quiet_hours": (1, 0),
        "suppression:support_ticket": (0, 2),
        "unreachable": (0, 1),
    }
    top = caps.top_fatigued[0]
    assert (top.customer, top.sends, top.cap.reason) == ("c-1", 3, "cap:all:7d")


def test_channels_count_decisions_and_say_replays_send_nothing(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        channels = {c.channel: c for c in cut.channels()}
    assert (channels["email"].sent, channels["email"].health) == (4, "dry_run")
    assert (channels["push"].sent, channels["push"].suppressed) == (1, 3)
    assert channels[None].suppressed == 1  # the fraud alert that found no channel


def test_customers_are_found_by_id_email_phone_and_id_prefix(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        assert [m.customer for m in cut.find_customers("ana@example.com")] == ["c-1"]
        assert [m.customer for m in cut.find_customers("+447700900513")] == ["c-2"]
        assert [m.customer for m in cut.find_customers("c-")] == [f"c-{n}" for n in range(1, 7)]
        assert cut.find_customers("nobody") == ()
        assert cut.customer("nobody") is None


def test_a_customer_record_explains_every_decision(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        record = cut.customer("c-1")
    assert record is not None
    why = {d.outcome: d.explanation for d in record.decisions}
    assert why["deferred"].startswith("quiet hours 21:00–08:00 in America/New_York")
    assert "all-channel cap" in why["suppressed"]
    items = present.timeline(record)
    assert [t.at for t in items] == sorted((t.at for t in items), reverse=True)
    consents = {c.channel: c for c in present.consents(record)}
    assert not consents["sms"].usable and consents["sms"].opted_out
    assert consents["whatsapp"].usable
    assert {u.cap.reason: u.used for u in record.caps}["cap:all:7d"] == 3
    active = [i for i in record.instances if i.status == "active"]
    assert [(i.journey, i.next_step, i.next_due) for i in active] == [
        ("onboarding", "nudge_day7", "2026-01-13T03:00:00Z")
    ]


def test_a_partitioned_store_reads_as_one(story: Path, story_parts: Path) -> None:
    with ConsoleReader(story).read() as one, ConsoleReader(story_parts).read() as two:
        s1, s2 = one.status(), two.status()
        assert (s2.customers, s2.decisions, s2.clock) == (s1.customers, s1.decisions, s1.clock)
        assert two.journeys() == one.journeys()
        assert two.channels() == one.channels()
        assert two.caps() == one.caps()
        for n in range(1, 7):
            assert without_ids(two.customer(f"c-{n}")) == without_ids(one.customer(f"c-{n}"))


def without_ids(record: CustomerRecord | None) -> CustomerRecord | None:
    """A record minus event row ids (each part numbers its own rows)."""
    if record is None:
        return None
    return replace(record, events=tuple(replace(e, id=0) for e in record.events))


@pytest.mark.asyncio
async def test_decisions_committed_after_a_read_are_counted_by_the_next(tmp_path: Path) -> None:
    world = await start_live(tmp_path / "live.db")
    try:
        await world.accept(identify("l-1", "2026-03-02T13:59:00Z", timezone="UTC"))
        reader = ConsoleReader(world.db)
        with reader.read() as cut:
            before = {c.channel: c.suppressed for c in cut.channels()}
        # no address at all: the governor decides (unreachable) and the decision commits
        # with the event, before `accept` returns
        await world.accept(track("l-1", "2026-03-02T14:00:00Z", "Fraud Suspected"))
        with reader.read() as cut:
            after = {c.channel: c.suppressed for c in cut.channels()}
        assert after.get(None, 0) == before.get(None, 0) + 1
    finally:
        await world.stop()
