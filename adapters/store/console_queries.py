"""SQL over the store for the console: one read-only connection, one committed cut per read.

The engine is the one writer; the console opens the SQLite file read-only (`mode=ro`)
and, thanks to WAL, never blocks it. A partitioned store's parts are attached and read
as one (`parts.attach_parts`). `ConsoleConnection.read()` opens one read transaction:
every query made through the `StoreCut` it yields sees the same checkpoint, so the
header's clock and every list agree.

The connection is reopened when the file appears, disappears or is recreated. Use a
`ConsoleConnection` from one thread at a time (the console's poll worker). Queries
return the typed records of `console_rows`; nothing here words anything.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from omniconsole.adapters.store.console_rows import (
    CustomerMatch,
    DecisionFilter,
    DecisionRow,
    EventRow,
    InboxRow,
    InstanceRow,
    OutboxRow,
)
from omniconsole.adapters.store.parts import attach_parts, read_part_names
from omniconsole.domain.config import ConfigError, JourneyDef, Policy
from omniconsole.domain.messages import Handoff
from omniconsole.domain.timeutil import parse_timestamp, to_micros

__all__ = ["ConsoleConnection", "StoreCut"]

#: the tables a store must have before the console reads it
REQUIRED_TABLES = frozenset({"meta", "ledger", "profiles", "journey_instances"})

#: a profile's name as the `profiles_name` index spells it (the same text, to be used)
NAME_SQL = (
    "lower(trim(coalesce(state ->> '$.traits.first_name', state ->> '$.traits.name', '')"
    " || ' ' || coalesce(state ->> '$.traits.last_name', '')))"
)

_DECISION_COLS = (
    "at, ts, customer, seq, message_id, journey, step, channel, category, outcome, "
    "reason, handoff_from, deferred_until, explanation"
)


def _loads(text: str | bytes | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def handoff_of(text: str | None) -> Handoff | None:
    """The ledger's `handoff_from` JSON as the domain's `Handoff`."""
    raw = _loads(text)
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
    """A `DecisionRow` from a row selected with `_DECISION_COLS`."""
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
        return _loads(row[0]) if row else None

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
        """How many profiles the cut holds."""
        return int(self.conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0])

    # ---------------------------------------------------------------- journeys

    def instance_counts(self) -> dict[str, dict[str, int]]:
        """journey -> status -> instances."""
        out: dict[str, dict[str, int]] = {}
        for journey, status, n in self.conn.execute(
            "SELECT journey, status, COUNT(*) FROM journey_instances GROUP BY journey, status"
        ):
            out.setdefault(journey, {})[status] = int(n)
        return out

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
                    f"SELECT {_DECISION_COLS} FROM {src}.ledger{sql_where}"
                    " ORDER BY ts DESC, customer DESC, seq DESC LIMIT ?",
                    (*args, limit),
                )
            ]
        if len(self.sources) > 1:
            rows = heapq.nlargest(limit, rows, key=lambda d: d.key)
        return rows[:limit]

    def customer_outcomes(self, customer: str) -> dict[str, int]:
        """outcome -> decisions of one customer."""
        return {
            str(o): int(n)
            for o, n in self.conn.execute(
                "SELECT outcome, COUNT(*) FROM ledger WHERE customer = ? GROUP BY outcome",
                (customer,),
            )
        }

    # ---------------------------------------------------------------- caps

    def cap_counts(self, scope: str, since: str, until: str, limit: int) -> tuple[int, int]:
        """(customers with capped sends in (since, until], of them at `limit` or more)."""
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(n >= ?), 0) FROM ("
            "SELECT customer, COUNT(*) AS n FROM cap_usage WHERE at > ? AND at <= ?"
        )
        args: list[object] = [limit, since, until]
        if scope != "all":
            sql += " AND channel = ?"
            args.append(scope)
        counted, full = self.conn.execute(sql + " GROUP BY customer)", args).fetchone()
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

    def customer_capped(self, customer: str, scope: str, since: str, until: str) -> int:
        """One customer's capped sends on `scope` in (since, until]."""
        sql = "SELECT COUNT(*) FROM cap_usage WHERE customer = ? AND at > ? AND at <= ?"
        args: list[object] = [customer, since, until]
        if scope != "all":
            sql += " AND channel = ?"
            args.append(scope)
        return int(self.conn.execute(sql, args).fetchone()[0])

    # ---------------------------------------------------------------- channels

    def adapter_health(self) -> dict[str, tuple[str, str]]:
        """channel -> (state, detail) as the engine last reported it."""
        return {
            str(ch): (str(state), str(detail))
            for ch, state, detail in self.conn.execute(
                "SELECT channel, state, detail FROM adapter_health"
            )
        }

    # ---------------------------------------------------------------- customers

    def _matches(self, where: str, args: Sequence[object], limit: int) -> list[CustomerMatch]:
        rows = self.conn.execute(
            f"SELECT customer, email, phone, {NAME_SQL}, updated_at FROM profiles WHERE {where}"
            " LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [CustomerMatch(r[0], r[1], r[2], r[3] or None, r[4]) for r in rows]

    def find_ids(self, customer: str) -> list[CustomerMatch]:
        """The profile whose id is exactly `customer`."""
        return self._matches("customer = ?", (customer,), 1)

    def find_phones(self, phones: Sequence[str], limit: int) -> list[CustomerMatch]:
        """Profiles holding one of `phones` (E.164)."""
        if not phones:
            return []
        marks = ", ".join("?" for _ in phones)
        return self._matches(f"phone IN ({marks}) ORDER BY customer", phones, limit)

    def find_email(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose email is `text` or starts with it (any case), in email order."""
        low = text.lower()
        return self._matches(
            "(email >= ? AND email < ?) OR email = ? COLLATE NOCASE ORDER BY email",
            (low, low + "\U0010ffff", text),
            limit,
        )

    def find_email_containing(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose email contains `text` anywhere (a scan: the last resort)."""
        return self._matches("instr(lower(email), ?) > 0 ORDER BY email", (text.lower(),), limit)

    def find_name(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose name starts with `text` (any case), served by `profiles_name`."""
        low = " ".join(text.lower().split())
        return self._matches(
            f"{NAME_SQL} >= ? AND {NAME_SQL} < ? ORDER BY {NAME_SQL}, customer",
            (low, low + "\U0010ffff"),
            limit,
        )

    def find_id_prefix(self, prefix: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose id starts with `prefix`, in id order."""
        return self._matches(
            "customer >= ? AND customer < ? ORDER BY customer", (prefix, prefix + "\U0010ffff"),
            limit,
        )  # fmt: skip

    def profile_row(self, customer: str) -> tuple[str, str | None, str | None, str, Any] | None:
        """(customer, email, phone, updated_at, decoded state) of one profile."""
        row = self.conn.execute(
            "SELECT customer, email, phone, updated_at, state FROM profiles WHERE customer = ?",
            (customer,),
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], _loads(row[4])

    def customer_events(self, customer: str, limit: int) -> tuple[list[EventRow], int]:
        """The customer's latest events (newest first) and how many there are."""
        rows = self.conn.execute(
            "SELECT id, at, applied_at, type, name, late, payload FROM events "
            "WHERE customer = ? ORDER BY id DESC LIMIT ?",
            (customer, limit),
        ).fetchall()
        total = self.conn.execute(
            "SELECT COUNT(*) FROM events WHERE customer = ?", (customer,)
        ).fetchone()[0]
        events = []
        for r in rows:
            payload = _loads(r[6])
            events.append(
                EventRow(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]),
                         payload if isinstance(payload, Mapping) else {})
            )  # fmt: skip
        return events, int(total)

    def customer_decisions(self, customer: str, limit: int) -> tuple[list[DecisionRow], int]:
        """The customer's latest decisions (newest first) and how many there are."""
        rows = self.conn.execute(
            f"SELECT {_DECISION_COLS} FROM ledger WHERE customer = ? "
            "ORDER BY at DESC, seq DESC LIMIT ?",
            (customer, limit),
        ).fetchall()
        total = self.conn.execute(
            "SELECT COUNT(*) FROM ledger WHERE customer = ?", (customer,)
        ).fetchone()[0]
        return [decision_row(r) for r in rows], int(total)

    def customer_outbox(self, customer: str, limit: int = 200) -> dict[str, OutboxRow]:
        """The customer's live sends (rendered, with their status) by message id."""
        out: dict[str, OutboxRow] = {}
        for message_id, channel, status, payload in self.conn.execute(
            "SELECT message_id, channel, status, payload FROM main.outbox WHERE customer = ?"
            " ORDER BY decided_at DESC LIMIT ?",
            (customer, limit),
        ):
            raw = _loads(payload)
            raw = raw if isinstance(raw, Mapping) else {}
            out[message_id] = OutboxRow(
                message_id, channel, status, str(raw.get("subject", "")),
                str(raw.get("text", "")), str(raw.get("detail", "")),
            )  # fmt: skip
        return out

    def customer_inbox(self, customer: str, limit: int = 200) -> dict[str, InboxRow]:
        """The customer's in-app messages by message id."""
        return {
            r[0]: InboxRow(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self.conn.execute(
                "SELECT message_id, at, subject, body, read FROM inbox WHERE customer = ?"
                " ORDER BY at DESC LIMIT ?",
                (customer, limit),
            )
        }

    def customer_instances(self, customer: str, limit: int = 50) -> list[InstanceRow]:
        """The customer's journey instances, live ones first, newest first."""
        return [
            InstanceRow(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6])
            for r in self.conn.execute(
                "SELECT journey, instance, status, entered_at, ended_at, next_step, next_due "
                "FROM journey_instances WHERE customer = ? "
                "ORDER BY (status = 'active') DESC, entered_at DESC LIMIT ?",
                (customer, limit),
            )
        ]


class ConsoleConnection:
    """The console's read-only connection to one store. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path; nothing is opened until the first read."""
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._sources: tuple[str, ...] = ("main",)
        self._seen: tuple[int, ...] = ()

    def close(self) -> None:
        """Close the connection (it is reopened on the next read)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 200")
            parts = attach_parts(conn, self.path)  # a partitioned replay's store
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._sources = tuple(f"p{k}" for k in range(parts)) or ("main",)
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_dev)

    def exists(self) -> bool:
        """Whether the store file is there at all (never creates it)."""
        return self.path.exists()

    def _versions(self, conn: sqlite3.Connection) -> tuple[int, ...]:
        # `data_version` changes when another connection commits to that database
        names = ("main", *(s for s in self._sources if s != "main"))
        return tuple(int(conn.execute(f"PRAGMA {n}.data_version").fetchone()[0]) for n in names)

    def changed(self) -> bool:
        """Whether anything was committed since the last `read` began (cheap; True when
        the store is not open, has been replaced, or cannot be asked)."""
        with self._lock:
            if self._conn is None or self._file_identity() != self._identity:
                return True
            try:
                return self._versions(self._conn) != self._seen
            except sqlite3.Error:
                return True

    @contextmanager
    def read(self) -> Iterator[StoreCut]:
        """One read transaction: every query through the cut sees the same checkpoint."""
        with self._lock:
            identity = self._file_identity()
            if identity != self._identity:
                self._close()
            self._identity = identity
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            self._seen = self._versions(conn)
            conn.execute("BEGIN")
            if self._sources == ("main",) and read_part_names(conn):
                # opened before the engine's first checkpoint named its parts: attach them
                conn.execute("COMMIT")
                self._close()
                self._conn = conn = self._connect()
                self._seen = self._versions(conn)
                conn.execute("BEGIN")
            try:
                yield StoreCut(conn, self._sources)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
