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
    DecisionRow,
    EventRow,
    InstanceRow,
)
from omniconsole.adapters.store.parts import attach_parts, read_part_names
from omniconsole.domain.config import ConfigError, JourneyDef, Policy
from omniconsole.domain.messages import Handoff

__all__ = ["ConsoleConnection", "StoreCut"]

#: the tables a store must have before the console reads it
REQUIRED_TABLES = frozenset({"meta", "ledger", "profiles", "journey_instances"})

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

    # ---------------------------------------------------------------- ledger

    def ledger_top(self, source: str) -> int:
        """The highest ledger id of one source."""
        return int(
            self.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {source}.ledger").fetchone()[0]
        )

    def ledger_after(self, source: str, after: int, limit: int) -> list[tuple[int, DecisionRow]]:
        """(id, decision) of one source's ledger rows after id `after`, in id order."""
        rows = self.conn.execute(
            f"SELECT id, {_DECISION_COLS} FROM {source}.ledger WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        return [(int(r[0]), decision_row(r[1:])) for r in rows]

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

    def find_exact(self, query: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose id, email (any case) or phone is exactly `query`."""
        cols = "customer, email, phone, updated_at"
        rows = self.conn.execute(
            f"SELECT {cols} FROM profiles WHERE customer = ? "
            f"UNION SELECT {cols} FROM profiles WHERE email = ? COLLATE NOCASE "
            f"UNION SELECT {cols} FROM profiles WHERE email = ? "
            f"UNION SELECT {cols} FROM profiles WHERE phone = ? LIMIT ?",
            (query, query, query.lower(), query, limit),
        ).fetchall()
        return [CustomerMatch(r[0], r[1], r[2], None, r[3]) for r in rows]

    def find_id_prefix(self, prefix: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose id starts with `prefix`, in id order."""
        rows = self.conn.execute(
            "SELECT customer, email, phone, updated_at FROM profiles"
            " WHERE customer >= ? AND customer < ? ORDER BY customer LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        ).fetchall()
        return [CustomerMatch(r[0], r[1], r[2], None, r[3]) for r in rows]

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
        #: bumped whenever the connection is (re)opened: running counts start over
        self.generation = 0

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
        self.generation += 1
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
            conn.execute("BEGIN")
            if self._sources == ("main",) and read_part_names(conn):
                # opened before the engine's first checkpoint named its parts: attach them
                conn.execute("COMMIT")
                self._close()
                self._conn = conn = self._connect()
                conn.execute("BEGIN")
            try:
                yield StoreCut(conn, self._sources)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
