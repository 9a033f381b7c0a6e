"""The seeded event-log generator: deterministic, ordered, valid, varied, lean."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.domain.events import Event, Rejected, parse_line
from omniconsole.domain.generator import MIXES, generate_events, write_log

START = datetime(2026, 3, 2, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.jsonl"

EXPECTED_KINDS = {
    "identify",
    "Signed Up",
    "Logged In",
    "Activated",
    "Product Viewed",
    "Order Completed",
    "Price Dropped",
    "Fraud Suspected",
    "Support Ticket Opened",
    "Unsubscribed",
    "Subscribed",
    "Inbound Message",
    "Message Opened",
    "Message Clicked",
    "Message Failed",
}


@pytest.fixture(scope="module")
def log_events() -> list[dict[str, Any]]:
    """A mid-sized log: 2,000 customers over 14 days."""
    return list(generate_events(2_000, 14, 3, START))


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_log(a, 300, 7, 11, START, malformed_rate=0.01)
    write_log(b, 300, 7, 11, START, malformed_rate=0.01)
    assert a.read_bytes() == b.read_bytes()


def test_a_different_seed_writes_different_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_log(a, 300, 7, 11, START)
    write_log(b, 300, 7, 12, START)
    assert a.read_bytes() != b.read_bytes()


def test_write_log_returns_the_number_of_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    count = write_log(path, 200, 5, 1, START, malformed_rate=0.01)
    assert count == len(path.read_bytes().splitlines())


def test_timestamps_never_go_backwards(log_events: list[dict[str, Any]]) -> None:
    stamps = [str(e["timestamp"]) for e in log_events]
    assert stamps == sorted(stamps)


def test_every_event_falls_inside_the_window(log_events: list[dict[str, Any]]) -> None:
    assert str(log_events[0]["timestamp"]) >= "2026-03-02T00:00:00Z"
    assert str(log_events[-1]["timestamp"]) < "2026-03-16T00:00:00Z"


def test_every_event_parses_and_has_a_unique_message_id(
    log_events: list[dict[str, Any]],
) -> None:
    parsed = [parse_line(orjson.dumps(e), i) for i, e in enumerate(log_events, 1)]
    assert all(isinstance(p, Event) for p in parsed)
    ids = [p.message_id for p in parsed if isinstance(p, Event)]
    assert None not in ids
    assert len(set(ids)) == len(ids)


def test_each_customer_is_identified_before_anything_else(
    log_events: list[dict[str, Any]],
) -> None:
    seen: set[object] = set()
    for event in log_events:
        if event["type"] == "identify":
            seen.add(event["userId"])
        assert event["userId"] in seen


def test_the_mix_contains_every_event_kind(log_events: list[dict[str, Any]]) -> None:
    kinds = Counter(str(e.get("event", e["type"])) for e in log_events)
    assert set(kinds) >= EXPECTED_KINDS
    assert kinds["Fraud Suspected"] < kinds["Order Completed"] < kinds["Logged In"]


def test_reachability_is_partial(log_events: list[dict[str, Any]]) -> None:
    identifies = [e for e in log_events if e["type"] == "identify"]
    traits = [e["traits"] for e in identifies if "timezone" in e["traits"]]
    assert len(traits) == 2_000
    email_only = [t for t in traits if "email" in t and "phone" not in t]
    phone_only = [t for t in traits if "phone" in t and "email" not in t]
    whatsapp = [t for t in traits if t.get("whatsapp_opt_in")]
    push = [t for t in traits if "push_token" in t]
    zones = {t["timezone"] for t in traits}
    assert email_only and phone_only and whatsapp and push
    assert {"America/New_York", "Asia/Kolkata", "Europe/Berlin", "UTC"} <= zones


def test_replies_include_stop_words_on_sms_or_whatsapp(
    log_events: list[dict[str, Any]],
) -> None:
    inbound = [e["properties"] for e in log_events if e.get("event") == "Inbound Message"]
    assert {p["channel"] for p in inbound} <= {"sms", "whatsapp"}
    bodies = {str(p["body"]).strip().casefold() for p in inbound}
    assert bodies & {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}


@pytest.mark.parametrize("per_customer", [5.0, 10.0, 20.0])
def test_event_count_scales_with_events_per_customer(per_customer: float) -> None:
    customers = 3_000
    count = sum(
        1 for _ in generate_events(customers, 14, 5, START, events_per_customer=per_customer)
    )
    assert count == pytest.approx(per_customer * customers, rel=0.10)


def test_the_default_count_scales_with_days() -> None:
    short = sum(1 for _ in generate_events(1_000, 3, 5, START))
    long = sum(1 for _ in generate_events(1_000, 28, 5, START))
    assert long > 2 * short


def test_malformed_lines_are_rejected_and_the_rest_is_intact(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    write_log(clean, 500, 7, 9, START, duplicate_rate=0.0)
    write_log(dirty, 500, 7, 9, START, duplicate_rate=0.0, malformed_rate=0.02)
    lines = dirty.read_bytes().splitlines()
    results = [parse_line(raw, i) for i, raw in enumerate(lines, 1)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    good = [raw for raw, r in zip(lines, results, strict=True) if isinstance(r, Event)]
    assert len(rejected) >= 20
    assert good == clean.read_bytes().splitlines()


def test_duplicates_are_exact_resends(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    write_log(path, 500, 7, 9, START, duplicate_rate=0.01)
    lines = path.read_bytes().splitlines()
    ids = Counter(orjson.loads(line)["messageId"] for line in lines)
    resent = {mid for mid, n in ids.items() if n > 1}
    assert resent
    for mid in resent:
        copies = {line for line in lines if orjson.loads(line)["messageId"] == mid}
        assert len(copies) == 1


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days"):
        generate_events(10, 0, 1, START)
    with pytest.raises(ValueError, match="malformed_rate"):
        write_log(tmp_path / "log.jsonl", 10, 1, 1, START, malformed_rate=2.0)
    with pytest.raises(ValueError, match="decision-heavy"):
        generate_events(10, 1, 1, START, mix="no-such-mix")


def test_the_default_mix_still_writes_the_bundled_sample_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "sample.jsonl"
    write_log(path, 300, 14, 7, START, malformed_rate=0.002, mix="default")
    assert path.read_bytes() == SAMPLE.read_bytes()


def test_the_decision_heavy_mix_is_mostly_price_drops_and_product_views() -> None:
    customers = 3_000
    events = list(generate_events(customers, 14, 5, START, mix="decision-heavy"))
    kinds = Counter(str(e.get("event", e["type"])) for e in events)
    assert len(events) / customers == pytest.approx(5.5, rel=0.1)
    assert kinds["Price Dropped"] / len(events) == pytest.approx(0.2, abs=0.03)
    assert kinds["Product Viewed"] / len(events) == pytest.approx(0.2, abs=0.03)
    default = Counter(
        str(e.get("event", e["type"])) for e in generate_events(customers, 14, 5, START)
    )
    assert kinds["Price Dropped"] > 2 * default["Price Dropped"]


def test_a_mix_keeps_the_log_ordered_and_valid() -> None:
    events = list(generate_events(1_000, 7, 2, START, mix=MIXES["decision-heavy"]))
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert all(isinstance(parse_line(orjson.dumps(e), i), Event) for i, e in enumerate(events, 1))


def test_memory_stays_flat_for_200k_events() -> None:
    tracemalloc.start()
    try:
        count = 0
        for _ in generate_events(20_000, 14, 2, START, events_per_customer=10):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count >= 180_000
    assert peak < 50 * 1024 * 1024
