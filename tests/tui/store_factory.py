"""Build a small, fixed store the console tests read (until the engine's replay can).

The data tells a story a support agent might meet: c-1 (New York) got a welcome
email, a WhatsApp nudge deferred by quiet hours and then sent, and a promotional
push suppressed by the all-channel cap; c-2 converted after a handoff from email
to sms; c-3 had a support ticket, so a price drop was suppressed.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omniconsole.adapters.store.schema import SCHEMA, SCHEMA_VERSION
from omniconsole.domain.messages import Handoff
from omniconsole.domain.profile import Profile

CLOCK = "2026-01-08T12:00:00Z"

POLICY: dict[str, Any] = {
    "capped_categories": ["lifecycle", "promotional"],
    "caps": [
        {"channel": "all", "window": "24h", "limit": 2},
        {"channel": "all", "window": "7d", "limit": 5},
        {"channel": "sms", "window": "24h", "limit": 1},
        {"channel": "whatsapp", "window": "24h", "limit": 1},
    ],
    "quiet_hours": {
        "start": "21:00",
        "end": "08:00",
        "channels": ["sms", "whatsapp", "rcs", "push"],
    },
    "support_ticket_suppression": "48h",
}

JOURNEYS: list[dict[str, Any]] = [
    {
        "name": "onboarding",
        "category": "lifecycle",
        "step": [
            {"name": "welcome"},
            {"name": "first_login"},
            {"name": "nudge_day3"},
            {"name": "nudge_day7"},
        ],
    },
    {"name": "order_confirmation", "category": "transactional", "step": [{"name": "receipt"}]},
    {"name": "price_drop", "category": "promotional", "step": [{"name": "alert"}]},
]

CHANNELS_META = {
    "email": {"configured": True, "mode": "dry-run", "detail": "SMTP not set: dry run"},
    "sms": {"configured": True, "mode": "live", "detail": "twilio"},
    "whatsapp": {"configured": True, "mode": "live", "detail": "twilio"},
    "rcs": {"configured": False, "mode": "dry-run", "detail": "no messaging service"},
    "push": {"configured": True, "mode": "live", "detail": "fcm"},
    "in_app": {"configured": True, "mode": "live", "detail": "inbox"},
}


def profile_state(customer: str, state: dict[str, Any]) -> str:
    """The profile as the engine stores it (the domain's own serialization)."""
    engagement = state.get("engagement")
    return (
        Profile(
            customer,
            traits=state["traits"],
            opted_out=set(state.get("opted_out", [])),
            engagement=None if engagement is None else Handoff(*engagement),
        )
        .dumps()
        .decode()
    )


PROFILES = [
    (
        "c-1",
        "ana@example.com",
        "+14155550101",
        {
            "traits": {
                "email": "ana@example.com",
                "phone": "+14155550101",
                "whatsapp_opt_in": True,
                "push_token": "tok-1",
                "timezone": "America/New_York",
                "first_name": "Ana",
            },
            "opted_out": ["sms"],
            "engagement": ["email", "opened", "2026-01-05T12:00:00Z"],
        },
    ),
    (
        "c-2",
        "bo@example.com",
        "+14155550102",
        {"traits": {"email": "bo@example.com", "phone": "+14155550102", "timezone": "UTC"}},
    ),
    (
        "c-3",
        None,
        "+14155550103",
        {"traits": {"phone": "+14155550103", "push_token": "tok-3", "timezone": "Europe/Paris"}},
    ),
]

EVENTS = [
    ("c-1", "2026-01-05T10:00:00Z", "identify", None, {"traits": {"email": "ana@example.com"}}),
    ("c-1", "2026-01-05T10:00:05Z", "track", "Signed Up", {"properties": {}}),
    ("c-2", "2026-01-05T11:00:00Z", "identify", None, {"traits": {"email": "bo@example.com"}}),
    ("c-2", "2026-01-05T11:00:05Z", "track", "Signed Up", {"properties": {}}),
    (
        "c-2",
        "2026-01-06T09:00:00Z",
        "track",
        "Message Opened",
        {"properties": {"channel": "email"}},
    ),
    ("c-3", "2026-01-07T09:00:00Z", "track", "Support Ticket Opened", {"properties": {}}),
    ("c-3", "2026-01-07T10:00:00Z", "track", "Price Dropped", {"properties": {"sku": "K1"}}),
    ("c-1", "2026-01-08T09:00:00Z", "track", "Price Dropped", {"properties": {"sku": "K2"}}),
    ("c-2", "2026-01-08T10:00:00Z", "track", "Activated", {"properties": {}}),
]

QUIET = "quiet hours 21:00–08:00 in America/New_York: deferred to 08:00 local (13:00Z)"

# (at, customer, message_id, journey, step, channel, category, outcome, reason,
#  handoff_from, deferred_until, explanation)
LEDGER: list[tuple[Any, ...]] = [
    (
        "2026-01-05T10:00:05Z",
        "c-1",
        "m-1",
        "onboarding",
        "welcome",
        "email",
        "lifecycle",
        "sent",
        None,
        None,
        None,
        "sent on email: first usable channel in [email, in_app]",
    ),
    (
        "2026-01-05T11:00:05Z",
        "c-2",
        "m-2",
        "onboarding",
        "welcome",
        "email",
        "lifecycle",
        "sent",
        None,
        None,
        None,
        "sent on email: first usable channel in [email, in_app]",
    ),
    (
        "2026-01-07T10:00:00Z",
        "c-3",
        "m-3",
        "price_drop",
        "alert",
        "push",
        "promotional",
        "suppressed",
        "suppression:support_ticket",
        None,
        None,
        "suppressed: no promotional messages within 48 h after a support ticket "
        "(opened 2026-01-07T09:00:00Z)",
    ),
    (
        "2026-01-08T02:00:05Z",
        "c-1",
        "m-4",
        "onboarding",
        "nudge_day3",
        "whatsapp",
        "lifecycle",
        "deferred",
        "quiet_hours",
        None,
        "2026-01-08T13:00:00Z",
        QUIET,
    ),
    (
        "2026-01-08T09:00:00Z",
        "c-1",
        "m-5",
        "price_drop",
        "alert",
        "push",
        "promotional",
        "suppressed",
        "cap:all:24h",
        None,
        None,
        "suppressed: all-channel cap full (2 of 2 capped sends in 24 h); promotional is dropped",
    ),
    (
        "2026-01-08T09:30:00Z",
        "c-2",
        "m-6",
        "onboarding",
        "nudge_day3",
        "sms",
        "lifecycle",
        "sent",
        None,
        '{"channel": "email", "action": "opened", "at": "2026-01-06T09:00:00Z"}',
        None,
        "sent on sms: first usable channel in [whatsapp, push, sms, email]",
    ),
    (
        "2026-01-08T11:00:00Z",
        "c-3",
        "m-7",
        "order_confirmation",
        "receipt",
        "sms",
        "transactional",
        "failed",
        "adapter:30003",
        None,
        None,
        "failed: the carrier reported 30003 (unreachable handset)",
    ),
]

INSTANCES = [
    (
        "c-1",
        "onboarding",
        1,
        "2026-01-05T10:00:05Z",
        "active",
        None,
        "nudge_day3",
        "2026-01-08T13:00:00Z",
    ),
    (
        "c-2",
        "onboarding",
        1,
        "2026-01-05T11:00:05Z",
        "converted",
        "2026-01-08T10:00:00Z",
        None,
        None,
    ),
    (
        "c-3",
        "order_confirmation",
        1,
        "2026-01-08T11:00:00Z",
        "completed",
        "2026-01-08T11:00:00Z",
        None,
        None,
    ),
    (
        "c-3",
        "price_drop",
        1,
        "2026-01-07T10:00:00Z",
        "completed",
        "2026-01-07T10:00:00Z",
        None,
        None,
    ),
    (
        "c-1",
        "price_drop",
        1,
        "2026-01-08T09:00:00Z",
        "completed",
        "2026-01-08T09:00:00Z",
        None,
        None,
    ),
]

CAP_USAGE = [
    ("m-1", "c-1", "2026-01-05T10:00:05Z", "email"),
    ("m-2", "c-2", "2026-01-05T11:00:05Z", "email"),
    ("m-x1", "c-1", "2026-01-07T14:00:00Z", "email"),
    ("m-x2", "c-1", "2026-01-07T15:00:00Z", "push"),
    ("m-6", "c-2", "2026-01-08T09:30:00Z", "sms"),
]

HEALTH = [
    ("email", "dry_run", "SMTP not configured: messages are logged", CLOCK),
    ("sms", "up", "twilio ok", CLOCK),
    ("whatsapp", "degraded", "2 timeouts in the last minute", CLOCK),
    ("push", "circuit_open", "FCM 503 x5; retry at 12:01Z", CLOCK),
]


def _micros(at: str) -> int:
    stamp = datetime.fromisoformat(at)
    return int((stamp - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def _ledger_line(row: tuple[Any, ...]) -> str:
    at, customer, mid, journey, step, channel, category, outcome, reason, handoff = row[:10]
    return json.dumps(
        {
            "at": at,
            "customer": customer,
            "journey": journey,
            "step": step,
            "message_id": mid,
            "channel": channel,
            "category": category,
            "outcome": outcome,
            "reason": reason,
            "handoff_from": json.loads(handoff) if handoff else None,
        }
    )


def insert_ledger(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Append ledger rows (each customer's `seq` continues from the store's)."""
    for row in rows:
        seq = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger WHERE customer = ?", (row[1],)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ledger (at, ts, customer, seq, message_id, journey, step, channel, "
            "category, outcome, reason, handoff_from, deferred_until, explanation, line) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], _micros(row[0]), row[1], seq, *row[2:], _ledger_line(row)),
        )


def build_store(path: Path) -> Path:
    """Create the store at `path` with the fixed data above; return the path."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "mode": "replay",
            "status": "done",
            "source": "tests/sample.jsonl",
            "config_dir": "config",
            "clock": CLOCK,
            "checkpoint_line": str(len(EVENTS)),
            "policy": json.dumps(POLICY),
            "journeys": json.dumps(JOURNEYS),
            "channels": json.dumps(CHANNELS_META),
            "report": json.dumps({}),
        }
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        for customer, email, phone, state in PROFILES:
            conn.execute(
                "INSERT INTO profiles (customer, email, phone, updated_at, state)"
                " VALUES (?, ?, ?, ?, ?)",
                (customer, email, phone, CLOCK, profile_state(customer, state)),
            )
        for i, (customer, at, kind, name, extra) in enumerate(EVENTS, start=1):
            payload = {"type": kind, "userId": customer, "timestamp": at, **extra}
            if name:
                payload["event"] = name
            conn.execute(
                "INSERT INTO events (line, customer, at, applied_at, type, name, message_id, "
                "payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (i, customer, at, at, kind, name, f"e-{i}", json.dumps(payload)),
            )
        insert_ledger(conn, LEDGER)
        conn.executemany("INSERT INTO journey_instances VALUES (?, ?, ?, ?, ?, ?, ?, ?)", INSTANCES)
        conn.executemany("INSERT INTO cap_usage VALUES (?, ?, ?, ?)", CAP_USAGE)
        conn.executemany("INSERT INTO adapter_health VALUES (?, ?, ?, ?)", HEALTH)
        conn.commit()
    finally:
        conn.close()
    return path


if __name__ == "__main__":  # build a store to look at: python -m tests.tui.store_factory X.db
    import sys

    print(build_store(Path(sys.argv[1])))
