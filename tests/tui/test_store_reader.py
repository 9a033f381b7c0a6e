"""The read-only store queries behind the console, against the fixed test store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_factory import LEDGER, insert_ledger

from omniconsole.adapters.store.reader import StoreReader, parse_caps


def test_missing_store_waits(tmp_path: Path) -> None:
    status = StoreReader(tmp_path / "nope.db").status()
    assert status.state == "missing"
    assert "does not exist yet" in status.message
    assert not (tmp_path / "nope.db").exists()  # read-only: never creates it


def test_store_being_created_waits(tmp_path: Path) -> None:
    (tmp_path / "new.db").touch()
    assert StoreReader(tmp_path / "new.db").status().state == "creating"


def test_status_reads_meta(store: Path) -> None:
    status = StoreReader(store).status()
    assert (status.state, status.mode, status.status) == ("ready", "replay", "done")
    assert (status.customers, status.ledger_rows, status.checkpoint_line) == (3, 7, 9)


def test_journey_stats(store: Path) -> None:
    stats = {j.name: j for j in StoreReader(store).journeys()}
    onboarding = stats["onboarding"]
    assert (onboarding.entered, onboarding.active, onboarding.converted) == (2, 1, 1)
    assert onboarding.conversion_rate == 0.5
    assert [s.step for s in onboarding.steps] == [
        "welcome",
        "first_login",
        "nudge_day3",
        "nudge_day7",
    ]
    assert {s.step: s.waiting for s in onboarding.steps}["nudge_day3"] == 1
    assert stats["price_drop"].exited == 2


def test_caps_overview(store: Path) -> None:
    caps = StoreReader(store).caps()
    at_cap = {s.cap.label: s.customers_at_cap for s in caps.caps}
    assert at_cap == {"cap:all:24h": 1, "cap:all:7d": 0, "cap:sms:24h": 1, "cap:whatsapp:24h": 0}
    assert {r.reason: (r.deferred, r.suppressed) for r in caps.reasons} == {
        "cap:all:24h": (0, 1),
        "quiet_hours": (1, 0),
        "suppression:support_ticket": (0, 1),
    }
    assert caps.top_fatigued[0].customer == "c-1"
    assert caps.top_fatigued[0].sends == 3


def test_parse_caps_shapes() -> None:
    nested = parse_caps({"caps": {"all": {"24h": 2}, "sms": [{"window": "24h", "limit": 1}]}})
    assert [(c.label, c.limit) for c in nested] == [("cap:all:24h", 2), ("cap:sms:24h", 1)]
    assert parse_caps(None)[0].label == "cap:all:24h"


def test_channel_stats(store: Path) -> None:
    channels = {c.channel: c for c in StoreReader(store).channels()}
    assert (channels["email"].sent, channels["email"].health) == (2, "dry_run")
    assert (channels["sms"].sent, channels["sms"].failed) == (1, 1)
    assert channels["push"].health == "circuit_open"
    assert channels["rcs"].health == "not_configured"


def test_lookup_by_id_email_phone_and_prefix(store: Path) -> None:
    reader = StoreReader(store)
    assert [m.customer for m in reader.find_customers("ana@example.com")] == ["c-1"]
    assert [m.customer for m in reader.find_customers("+14155550103")] == ["c-3"]
    assert [m.customer for m in reader.find_customers("c-")] == ["c-1", "c-2", "c-3"]
    assert reader.find_customers("nobody") == ()
    assert reader.customer("nobody") is None


def test_customer_context_explains_decisions(store: Path) -> None:
    ctx = StoreReader(store).customer("c-1")
    assert ctx is not None
    why = {m.outcome: m.explanation for m in ctx.messages}
    assert why["deferred"].startswith("quiet hours 21:00–08:00 in America/New_York")
    assert "all-channel cap full" in why["suppressed"]
    assert [t.at for t in ctx.timeline] == sorted((t.at for t in ctx.timeline), reverse=True)
    consents = {c.channel: c for c in ctx.consents}
    assert not consents["sms"].usable and consents["sms"].opted_out
    assert consents["whatsapp"].usable
    assert {u.cap.label: u.used for u in ctx.caps}["cap:all:24h"] == 2
    assert ctx.journeys[0].next_step == "nudge_day3"


def test_new_ledger_rows_are_tailed(store: Path) -> None:
    reader = StoreReader(store)
    _, total, _ = reader.handoffs()
    with sqlite3.connect(store) as conn:
        row = list(LEDGER[5])
        row[0], row[2] = "2026-01-08T11:30:00Z", "m-8"
        insert_ledger(conn, [tuple(row)])
    assert reader.handoffs()[1] == total + 1
    assert reader.status().ledger_rows == len(LEDGER) + 1


def test_entries_per_hour_count_the_instances_entered_in_the_window(store: Path) -> None:
    stats = {j.name: j for j in StoreReader(store).journeys()}
    conn = sqlite3.connect(store)
    try:
        (clock,) = conn.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
        conn.execute(
            "INSERT INTO journey_instances VALUES ('c-9', 'onboarding', 1, ?, 'active', NULL,"
            " NULL, NULL)",
            (clock,),
        )
        conn.commit()
    finally:
        conn.close()
    after = {j.name: j for j in StoreReader(store).journeys()}
    series = after["onboarding"].entries_series
    assert len(series) == len(after["onboarding"].sends_series) > 0
    assert sum(series) == sum(stats["onboarding"].entries_series) + 1
    assert series[-1] >= 1  # the newest bucket holds the instance entered at the clock
