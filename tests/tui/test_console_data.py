"""The console's data layer against stores the engine wrote (see `worlds.STORY`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from live_console_world import start_live
from worlds import identify, track

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.console_rows import CustomerRecord, DecisionFilter
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.tui import present
from omniconsole.tui.timeline import timeline


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
    assert (status.state, status.mode, status.status) == ("ready", "replay", "until")
    assert (status.customers, status.decisions, status.checkpoint_line) == (7, 15, 24)
    assert status.clock == "2026-01-10T12:00:00Z"  # where --until stopped it


def test_journeys_list_the_stored_definitions_with_the_engines_counts(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        stats = {j.name: j for j in cut.journeys()}
    onboarding = stats["onboarding"]
    assert (onboarding.entered, onboarding.active, onboarding.converted) == (3, 2, 1)
    assert onboarding.conversion_rate == pytest.approx(1 / 3)
    assert [s.step for s in onboarding.steps] == ["welcome", "first_login", "nudge_day3",
                                                  "nudge_day7"]  # fmt: skip
    assert {s.step: s.waiting for s in onboarding.steps}["nudge_day7"] == 2
    assert stats["price_drop"].exited == 3
    assert stats["price_drop"].conversion_rate is None  # no goal: no rate at all


def test_the_funnel_counts_customers_and_shows_fallbacks_apart(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        onboarding = next(j for j in cut.journeys() if j.name == "onboarding")
    welcome = next(s for s in onboarding.steps if s.step == "welcome")
    assert (welcome.sent, welcome.fallback_sent) == (3, 1)  # c-7's bounce went in the app
    assert welcome.sent <= onboarding.entered
    assert onboarding.messages_sent == 7


def test_caps_read_the_policy_through_the_domains_own_type(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        caps = cut.caps()
    assert caps.policy == load_config(shipped_config_dir()).policy
    at_cap = {s.cap.reason: (s.customers_at_cap, s.customers_counted) for s in caps.caps}
    assert at_cap == {
        "cap:all:24h": (0, 1),
        "cap:all:7d": (0, 3),
        "cap:sms:24h": (0, 0),
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
    assert (top.deferred, top.suppressed) == (1, 1)


def test_channels_count_decisions_and_say_replays_send_nothing(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        channels = {c.channel: c for c in cut.channels()}
    assert (channels["email"].sent, channels["email"].health) == (6, "dry_run")
    assert (channels["push"].sent, channels["push"].suppressed) == (1, 3)
    assert channels["in_app"].sent == 1
    assert channels[None].suppressed == 1  # the fraud alert that found no channel


def test_decisions_page_newest_first_under_a_filter_with_the_total(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        page = cut.decisions(DecisionFilter(outcome="suppressed"), limit=3)
        assert [d.reason for d in page.rows] == ["suppression:support_ticket", "unreachable",
                                                 "suppression:support_ticket"]  # fmt: skip
        assert (page.total, page.more) == (4, True)
        older = cut.decisions(DecisionFilter(outcome="suppressed"), page.rows[-1].key, 3)
        assert [d.reason for d in older.rows] == ["cap:all:24h"]
        assert not older.more
        since = cut.decisions(DecisionFilter(since="2026-01-09T00:00:00Z"))
        assert {d.customer for d in since.rows} == {"c-1", "c-2", "c-7"}
        assert since.total is None  # the counts do not keep time ranges


def test_customers_are_found_by_id_phone_email_name_and_prefix(story: Path) -> None:
    with ConsoleReader(story).read() as cut:

        def found(query: str) -> list[str]:
            return [m.customer for m in cut.find_customers(query)]

        assert found("c-3") == ["c-3"]
        assert found("ana@example.com") == ["c-1"]
        assert found("ANA@example.com") == ["c-1"]
        for phone in ("+447700900513", "+44 7700 900513", "447700900513", "07700 900513",
                      "whatsapp:+447700900513", "0044 7700 900513"):  # fmt: skip
            assert found(phone) == ["c-2"], phone
        assert found("(415) 555-0101") == ["c-1"]
        assert found("bo@") == ["c-2"]
        with_email = [f"c-{n}" for n in (1, 2, 3, 4, 5, 7)]
        assert found("example.com") == with_email  # any part of an address, at last
        assert found("@example") == with_email
        assert found("gil") == ["c-7"]
        assert found("Ana") == ["c-1"]
        assert found("c-") == [f"c-{n}" for n in range(1, 8)]
        assert found("nobody") == []
        assert cut.customer("nobody") is None


def test_a_customer_record_explains_every_decision(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        record = cut.customer("c-1")
    assert record is not None
    why = {d.outcome: d.explanation for d in record.decisions}
    assert why["deferred"].startswith("quiet hours 21:00–08:00 in America/New_York")
    assert "all-channel cap" in why["suppressed"]
    items = timeline(record)
    assert [t.at for t in items] == sorted((t.at for t in items), reverse=True)
    consents = {c.channel: c for c in present.consents(record)}
    assert not consents["sms"].usable and consents["sms"].opted_out
    assert consents["whatsapp"].usable
    assert {u.cap.reason: u.used for u in record.caps}["cap:all:7d"] == 3
    active = [i for i in record.instances if i.status == "active"]
    assert [(i.journey, i.next_step, i.next_due) for i in active] == [
        ("onboarding", "nudge_day7", "2026-01-13T03:00:00Z")
    ]


def test_a_stop_reply_is_not_shown_as_what_a_message_continues_from(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        record = cut.customer("c-1")
    assert record is not None
    assert all(d.handoff is None for d in record.decisions)
    assert not any("continues from" in t.why for t in timeline(record))


def test_messages_show_what_they_said_and_what_the_provider_answered(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        bo, di, gil = cut.customer("c-2"), cut.customer("c-4"), cut.customer("c-7")
    assert bo is not None and di is not None and gil is not None
    nudge = next(t for t in timeline(bo) if t.message_id == "c-2:onboarding:1:nudge_day3")
    assert "since you opened our email" in nudge.detail  # rendered with its handoff
    assert "rendered from the templates" in nudge.detail
    opened = next(t for t in timeline(bo) if t.title.startswith("opened"))
    assert opened.title == (
        "opened their email c-2:onboarding:1:welcome · link https://shop.example.com/start"
    )
    receipt = next(t for t in timeline(di) if t.message_id == "c-4:order_confirmation:1:receipt")
    assert "Your order O-1 is confirmed" in receipt.detail
    assert "delivered 01-07 14:05 (mx-4411)" in receipt.detail
    welcome = next(t for t in timeline(gil) if t.message_id == "c-7:onboarding:1:welcome")
    assert "failed 01-06 11:30: code 550 (mx-7)" in welcome.detail


def test_a_skipped_step_says_why(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        ed = cut.customer("c-5")
    assert ed is not None
    [skipped] = [t for t in timeline(ed) if t.kind == "skipped"]
    assert skipped.why == "recommend skipped: Order Completed since entry (01-07 20:00)"
    assert skipped.at == "2026-01-08T09:00:00Z"


def test_a_partitioned_store_reads_as_one(story: Path, story_parts: Path) -> None:
    with ConsoleReader(story).read() as one, ConsoleReader(story_parts).read() as two:
        s1, s2 = one.status(), two.status()
        assert (s2.customers, s2.decisions, s2.clock) == (s1.customers, s1.decisions, s1.clock)
        assert two.journeys() == one.journeys()
        assert two.channels() == one.channels()
        assert two.caps() == one.caps()
        everything = DecisionFilter()
        assert two.decisions(everything, limit=4) == one.decisions(everything, limit=4)
        page = one.decisions(everything, limit=4)
        after = page.rows[-1].key
        assert two.decisions(everything, after, 4) == one.decisions(everything, after, 4)
        for n in range(1, 8):
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
        assert reader.changed()
        with reader.read() as cut:
            after = {c.channel: c.suppressed for c in cut.channels()}
        assert after.get(None, 0) == before.get(None, 0) + 1
    finally:
        await world.stop()


@pytest.mark.asyncio
async def test_live_events_applied_a_moment_after_they_happened_are_not_called_late(
    tmp_path: Path,
) -> None:
    """Under `serve`, every event is applied microseconds after its own timestamp: the
    timeline must not tell an agent each one is 'late'."""
    world = await start_live(tmp_path / "live.db")
    try:
        await world.accept(
            identify("l-1", "2026-03-02T13:59:59.999400Z", email="l1@example.com"),
            track("l-1", "2026-03-02T13:59:59.999800Z", "Order Completed", order_id="O"),
            track("l-1", "2026-03-02T13:40:00Z", "Product Viewed", sku="K"),  # really late
        )
        with ConsoleReader(world.db).read() as cut:
            record = cut.customer("l-1")
        assert record is not None
        whys = {t.title.split()[0]: t.why for t in timeline(record) if t.kind == "event"}
        assert whys["identify"] == "" and whys["Order"] == ""
        assert whys["Product"] == "arrived late: happened 03-02 13:40, applied 20 min later"
    finally:
        await world.stop()


def test_a_customer_record_shows_topics_affinity_and_the_best_hour(channels_story: Path) -> None:
    with ConsoleReader(channels_story).read() as cut:
        record = cut.customer("c-1")
    assert record is not None and record.channels is not None
    topics = {t.name: dict(t.channels) for t in record.channels.topics}
    assert topics["deals"] == {"push": False, "whatsapp": True, "email": True}
    assert topics["recommendations"]["whatsapp"] is False  # opt-in there
    assert record.channels.affinity[0].channel == "email"
    best = record.channels.best_hour
    assert best is not None and (best.hour, best.own) == (19, True)
    assert record.channels.open_digests == 1
    lines = dict(present.channel_lines(record))
    assert lines["topic deals"] == "off on push — Price drops"
    assert lines["topic account"].startswith("always on (transactional)")
    assert lines["best hour"].startswith("19:00 local, their most engaged hour (3 of 3")
    assert "channel state" not in dict(present.profile_facts(record))


def test_a_run_without_channel_rules_shows_no_channels_section(story: Path) -> None:
    with ConsoleReader(story).read() as cut:
        record = cut.customer("c-1")
    assert record is not None and record.channels is None
    assert present.channel_lines(record) == []
