"""SQL over one committed cut of the store for the console (`StoreCut`).

`console_connection.ConsoleConnection.read()` yields a `StoreCut` inside one read
transaction, so every query here sees the same checkpoint: the header's clock and
every list agree. A partitioned store's per-customer tables are views over its parts;
the Decisions view asks each part (`sources`) and merges. Queries return the typed
records of `console_rows`; nothing here words anything. Customer lookups are in
`console_customers`.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from omniconsole.adapters.store.console_rows import (
    DecisionFilter,
    DecisionRow,
)
from omniconsole.domain.config import ConfigError, JourneyDef, Policy
from omniconsole.domain.messages import Handoff
from omniconsole.domain.timeutil import parse_timestamp, to_micros

__all__ = ["DECISION_COLS", "NAME_SQL", "REQUIRED_TABLES", "StoreCut", "decision_row", "loads"]

#: the tables a store must have before the console reads it
REQUIRED_TABLES = frozenset({"meta", "ledger", "profiles", "journey_instances"})

#: a profile's name as the `profiles_name` index spells it (the same text, to be used)
NAME_SQL = (
    "CASE WHEN json_valid(state) THEN"
    " lower(trim(coalesce(state ->> '$.traits.first_name', state ->> '$.traits.name', '')"
    " || ' ' || coalesce(state ->> '$.traits.last_name', ''))) END"
)

DECISION_COLS = (
    "at, ts, customer, seq, message_id, journey, step, channel, category, outcome, "
    "reason, handoff_from, deferred_until, explanation"
)


def loads(text: str | bytes | None) -> Any:
    """JSON text decoded; None when empty or not JSON."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def handoff_of(text: str | None) -> Handoff | None:
    """The ledger's `handoff_from` JSON as the domain's `Handoff`."""
    raw = loads(text)
    if not isinstance(raw, Mapping):
        return None
    return Handoff(str(raw.get("channel", "?")), str(raw.get("action", "?")),
                   str(raw.get("at", "")))  # fmt: skip


def _decision_where(where: DecisionFilter) -> tuple[list[str], list[object]]:
    """SQL conditions (and their arguments) for a decision filter."""
    clauses: list[str] = []
    args: list[object] = []
    for column in ("outcome", "reason", "journey", "step", "customer"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if where.channel is not None:
        clauses.append("channel IS NULL" if where.channel == "" else "channel = ?")
        if where.channel:
            args.append(where.channel)
    if where.since is not None:
        clauses.append("ts >= ?")
        args.append(to_micros(parse_timestamp(where.since)))
    if where.until is not None:
        clauses.append("ts < ?")
        args.append(to_micros(parse_timestamp(where.until)))
    if where.handoffs or where.handoff_from is not None:
        clauses.append("handoff_from IS NOT NULL")
    if where.handoff_from is not None:
        # the expression of the `ledger_handoff` index, so that index serves it
        clauses.append("handoff_from ->> 'channel' = ?")
        args.append(where.handoff_from)
    return clauses, args


def decision_row(r: sqlite3.Row | Sequence[Any]) -> DecisionRow:
    """A `DecisionRow` from a row selected with `DECISION_COLS`."""
    return DecisionRow(
        at=r[0],
        ts=int(r[1]),
        customer=r[2],
        seq=int(r[3]),
        message_id=r[4],
        journey=r[5],
        step=r[6],
        channel=r[7],
        category=r[8],
        outcome=r[9],
        reason=r[10],
        handoff=handoff_of(r[11]),
        deferred_until=r[12],
        explanation=r[13],
    )


@dataclass(slots=True)
class StoreCut:
    """Queries inside one read transaction (one committed checkpoint).

    `sources` are the databases holding per-customer rows: `main`, or `p0`, `p1`, …
    for a partitioned store (the unqualified table names are views over all of them).
    """

    conn: sqlite3.Connection
    sources: tuple[str, ...]

    # ---------------------------------------------------------------- run facts

    def tables(self) -> set[str]:
        """The tables of the main database."""
        return {
            r[0]
            for r in self.conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")
        }

    def meta(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """The main store's `meta` (only `keys` when given)."""
        if keys is None:
            rows = self.conn.execute("SELECT key, value FROM main.meta")
        else:
            marks = ", ".join("?" for _ in keys)
            rows = self.conn.execute(
                f"SELECT key, value FROM main.meta WHERE key IN ({marks})", tuple(keys)
            )
        return {str(k): str(v) for k, v in rows}

    def meta_json(self, key: str) -> Any:
        """One `meta` value decoded from JSON (None when absent or not JSON)."""
        row = self.conn.execute("SELECT value FROM main.meta WHERE key = ?", (key,)).fetchone()
        return loads(row[0]) if row else None

    def policy(self) -> Policy | None:
        """The policy in force, read back through the domain's own type."""
        raw = self.meta_json("policy")
        if not isinstance(raw, dict):
            return None
        try:
            return Policy.from_json(raw)
        except (ConfigError, ValueError):
            return None

    def journey_defs(self) -> tuple[JourneyDef, ...]:
        """The journeys in force, in the order the engine stored them."""
        raw = self.meta_json("journeys")
        if not isinstance(raw, list):
            return ()
        out: list[JourneyDef] = []
        for item in raw:
            if isinstance(item, dict):
                try:
                    out.append(JourneyDef.from_json(item))
                except (ConfigError, ValueError):
                    continue
        return tuple(out)

    def decision_total(self) -> int:
        """How many decisions the cut holds (ledger ids are dense per source)."""
        return sum(
            int(self.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {s}.ledger").fetchone()[0])
            for s in self.sources
        )

    def customer_total(self) -> int:
        """How many profiles the cut holds. Profiles are upserted, never deleted, so each
        part's largest rowid is its count: O(1), where COUNT(*) read 100k rows."""
        return sum(
            int(
                self.conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {s}.profiles").fetchone()[0]
            )
            for s in self.sources
        )

    # ---------------------------------------------------------------- journeys

    def waiting_per_step(self) -> dict[str, dict[str, int]]:
        """journey -> step -> active instances whose next pending step it is."""
        out: dict[str, dict[str, int]] = {}
        for journey, step, n in self.conn.execute(
            "SELECT journey, next_step, COUNT(*) FROM journey_instances "
            "WHERE status = 'active' AND next_step IS NOT NULL GROUP BY journey, next_step"
        ):
            out.setdefault(journey, {})[step] = int(n)
        return out

    def entries_per_hour(self, first_hour: str) -> dict[str, dict[str, int]]:
        """journey -> hour (`2026-03-02T10`) -> instances entered, from `first_hour` on."""
        out: dict[str, dict[str, int]] = {}
        for journey, hour, n in self.conn.execute(
            "SELECT journey, substr(entered_at, 1, 13) AS h, COUNT(*) FROM journey_instances"
            " WHERE entered_at >= ? GROUP BY journey, h",
            (first_hour,),
        ):
            out.setdefault(journey, {})[hour] = int(n)
        return out

    # ---------------------------------------------------------------- counts

    def counter_rows(self) -> list[tuple[str, str, str, str, str, int, str, int]]:
        """The engine's decision counts, summed over the parts."""
        return [
            (r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], int(r[7]))
            for r in self.conn.execute(
                "SELECT journey, step, channel, outcome, reason, resend, handoff, SUM(total)"
                " FROM counters GROUP BY journey, step, channel, outcome, reason, resend, handoff"
            )
        ]

    def hourly_rows(self, first_hour: str) -> list[tuple[str, str, str, str, str, int]]:
        """The engine's decision counts per simulated hour, from `first_hour` on."""
        return [
            (r[0], r[1], r[2], r[3], r[4], int(r[5]))
            for r in self.conn.execute(
                "SELECT hour, journey, channel, outcome, reason, SUM(total) FROM counters_hourly"
                " WHERE hour >= ? GROUP BY hour, journey, channel, outcome, reason",
                (first_hour,),
            )
        ]

    def instance_counter_rows(self) -> list[tuple[str, str, int]]:
        """The engine's journey instance counts (entered, final statuses)."""
        return [
            (r[0], r[1], int(r[2]))
            for r in self.conn.execute(
                "SELECT journey, status, SUM(total) FROM instance_counters GROUP BY journey, status"
            )
        ]

    # ---------------------------------------------------------------- ledger

    def decisions(
        self, where: DecisionFilter, after: tuple[int, str, int] | None, limit: int
    ) -> list[DecisionRow]:
        """Up to `limit` decisions matching `where`, newest first, older than `after`.

        Keyset paging over (ts, customer, seq), the ledger's unique total order: each
        part is asked for its newest `limit` (an index yields them in time order) and
        the answers are merged, so a page costs the same on page 1 and page 10,000.
        """
        clauses, args = _decision_where(where)
        if after is not None:
            ts, customer, seq = after
            clauses.append("ts <= ? AND (ts < ? OR (customer, seq) < (?, ?))")
            args += [ts, ts, customer, seq]
        sql_where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows: list[DecisionRow] = []
        for src in self.sources:
            rows += [
                decision_row(r)
                for r in self.conn.execute(
                    f"SELECT {DECISION_COLS} FROM {src}.ledger{sql_where}"
                    " ORDER BY ts DESC, customer DESC, seq DESC LIMIT ?",
                    (*args, limit),
                )
            ]
        if len(self.sources) > 1:
            rows = heapq.nlargest(limit, rows, key=lambda d: d.key)
        return rows[:limit]

    # ---------------------------------------------------------------- caps

    def cap_counts(self, scope: str, since: str, until: str, limit: int) -> tuple[int, int]:
        """(customers with capped sends in (since, until], of them at `limit` or more)."""
        # portable SQL (PostgreSQL reads it too): no SUM over a boolean, a named subquery
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN n >= ? THEN 1 ELSE 0 END), 0) FROM ("
            "SELECT customer, COUNT(*) AS n FROM cap_usage WHERE at > ? AND at <= ?"
        )
        args: list[object] = [limit, since, until]
        if scope != "all":
            sql += " AND channel = ?"
            args.append(scope)
        counted, full = self.conn.execute(sql + " GROUP BY customer) AS per_customer",
                                          args).fetchone()  # fmt: skip
        return int(counted), int(full)

    def most_capped(self, since: str, until: str, limit: int) -> list[tuple[str, int]]:
        """(customer, capped sends in (since, until]), most first."""
        return [
            (str(c), int(n))
            for c, n in self.conn.execute(
                "SELECT customer, COUNT(*) AS n FROM cap_usage WHERE at > ? AND at <= ? "
                "GROUP BY customer ORDER BY n DESC, customer LIMIT ?",
                (since, until, limit),
            )
        ]

    # ---------------------------------------------------------------- channels

    def adapter_health(self) -> dict[str, tuple[str, str]]:
        """channel -> (state, detail) as the engine last reported it."""
        return {
            str(ch): (str(state), str(detail))
            for ch, state, detail in self.conn.execute(
                "SELECT channel, state, detail FROM adapter_health"
            )
        }
