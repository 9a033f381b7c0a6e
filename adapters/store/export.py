"""What a finished replay writes out of its store: the ledger, the rejects, the report counts.

Everything here reads through a plain read-only `sqlite3` connection — for a partitioned
store, one from `adapters.store.parts.open_combined`, which sees all parts as one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from omniconsole.adapters.store.parts import read_part_names


def export_ledger(conn: sqlite3.Connection, out: Path) -> int:
    """Write the ledger in its total order (time, customer, sequence); return line count.

    Over parts, SQLite merges the parts' index-ordered scans (MERGE UNION ALL) instead of
    sorting the whole ledger: a customer is in one part, so the merge is the total order.
    """
    parts = len(read_part_names(conn))
    if parts:
        arms = " UNION ALL ".join(
            f"SELECT ts, customer, seq, line FROM p{k}.ledger" for k in range(parts)
        )
        query = f"{arms} ORDER BY 1, 2, 3"
        column = 3
    else:
        query, column = "SELECT line FROM ledger ORDER BY ts, customer, seq", 0
    count = 0
    cursor = conn.execute(query)
    with out.open("wb") as handle:
        while rows := cursor.fetchmany(10_000):
            handle.write(b"".join(row[column].encode() + b"\n" for row in rows))
            count += len(rows)
    return count


def export_rejects(conn: sqlite3.Connection, out: Path) -> int:
    """Write the rejected lines (line, reason, raw) in log order; return their count."""
    count = 0
    with out.open("wb") as handle:
        for line, reason, raw in conn.execute(
            "SELECT line, reason, raw FROM main.rejects ORDER BY line"
        ):
            handle.write(orjson.dumps({"line": line, "reason": reason, "raw": raw}) + b"\n")
            count += 1
    return count


def ledger_summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts for the report: by channel and outcome, suppressions by reason, handoffs."""
    channels: dict[str | None, dict[str, int]] = {}
    for channel, outcome, n in conn.execute(
        "SELECT channel, outcome, count(*) FROM ledger GROUP BY channel, outcome"
    ):
        channels.setdefault(channel, {})[outcome] = n
    reasons: dict[str, int] = {
        reason: n
        for reason, n in conn.execute(
            "SELECT reason, count(*) FROM ledger WHERE outcome = 'suppressed' GROUP BY reason"
            " ORDER BY reason"
        )
    }
    row = conn.execute(
        "SELECT count(*) FROM ledger WHERE outcome = 'sent' AND handoff_from IS NOT NULL"
    ).fetchone()
    journeys: dict[str, tuple[int, int]] = {
        journey: (int(entered), int(converted or 0))
        for journey, entered, converted in conn.execute(
            "SELECT journey, count(*), sum(status = 'converted') FROM journey_instances"
            " GROUP BY journey"
        )
    }
    return {
        "channels": channels,
        "reasons": reasons,
        "handoffs": int(row[0]) if row else 0,
        "journeys": journeys,
    }


def message_ids(conn: sqlite3.Connection, up_to_line: int | None = None) -> set[str]:
    """Message ids of the applied events (those from log lines up to `up_to_line`)."""
    if up_to_line is None:
        rows = conn.execute("SELECT message_id FROM events WHERE message_id IS NOT NULL")
    else:
        rows = conn.execute(
            "SELECT message_id FROM events WHERE message_id IS NOT NULL AND line <= ?",
            (up_to_line,),
        )
    return {row[0] for row in rows}
