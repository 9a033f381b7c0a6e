"""The durable store: SQLite in WAL mode, written in batches through aiosqlite.

One writer (the store writer actor) holds a `SqliteStore`; everything written between
two `checkpoint` calls commits as one transaction, so a reader — or a restart after a
crash — sees whole checkpoints only. Profile activation reads through a separate
read-only connection (`ProfileReader`), which WAL lets run beside the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from omniconsole.adapters.store.schema import SCHEMA, SCHEMA_VERSION
from omniconsole.domain.events import Event
from omniconsole.domain.ledger import encode_line
from omniconsole.domain.timeutil import format_timestamp

Row = tuple[Any, ...]

# table -> (verb, columns, conflict clause). Each batch goes to SQLite as ONE JSON array
# expanded by json_each: the rows are inserted in C under a single release of the GIL.
# (executemany binds row by row, taking the GIL back for every row; with the actor
# threads busy that convoy made the writer the bottleneck.)
_TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "events": ("INSERT", ("line", "customer", "at", "applied_at", "type", "name", "message_id",
                          "late", "payload"), ""),
    "rejects": ("INSERT", ("line", "reason", "raw"), ""),
    "ledger": ("INSERT", ("at", "ts", "customer", "seq", "message_id", "journey", "step",
                          "channel", "category", "outcome", "reason", "handoff_from",
                          "deferred_until", "explanation", "line"), ""),
    "profiles": ("INSERT", ("customer", "email", "phone", "updated_at", "next_due", "state"),
                 " ON CONFLICT(customer) DO UPDATE SET email=excluded.email,"
                 " phone=excluded.phone, updated_at=excluded.updated_at,"
                 " next_due=excluded.next_due, state=excluded.state"),
    "journey_instances": ("INSERT OR REPLACE", ("customer", "journey", "instance", "entered_at",
                                                "status", "ended_at", "next_step", "next_due"), ""),
    "cap_usage": ("INSERT OR IGNORE", ("message_id", "customer", "at", "channel"), ""),
    "inbox": ("INSERT OR IGNORE", ("message_id", "customer", "at", "journey", "step", "subject",
                                   "body"), ""),
    "adapter_health": ("INSERT OR REPLACE", ("channel", "state", "detail", "updated_at"), ""),
    "outbox": ("INSERT OR REPLACE", ("message_id", "customer", "channel", "decided_at", "payload",
                                     "status"), ""),
}  # fmt: skip


def _bulk_insert(table: str) -> str:
    verb, columns, conflict = _TABLES[table]
    values = ", ".join(f"value ->> {i}" for i in range(len(columns)))
    return (
        f"{verb} INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_each(?)"
        f" WHERE true{conflict}"
    )


def _row_insert(table: str) -> str:
    verb, columns, conflict = _TABLES[table]
    marks = ", ".join("?" for _ in columns)
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){conflict}"


INSERT = {table: _bulk_insert(table) for table in _TABLES}
INSERT_ROWS = {table: _row_insert(table) for table in _TABLES}
# Tables written in this order inside a checkpoint.
TABLE_ORDER = tuple(INSERT)
BATCH_ROWS = 5000


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says which file and why."""


class SqliteStore:
    """Async writer over one SQLite file. Use from one thread/event loop only."""

    def __init__(self, path: Path, *, gil_free_inserts: bool = True) -> None:
        """`gil_free_inserts`: hand each batch to SQLite as one JSON array (the GIL is free
        while it inserts, so Python threads run meanwhile) rather than `executemany`
        (half the CPU, but it binds row by row holding the GIL). A process whose threads
        share one core (a pinned partition) wants the cheaper one."""
        self.path = path
        self.gil_free_inserts = gil_free_inserts
        self._db: aiosqlite.Connection | None = None
        self._pending: dict[str, list[Row]] = {name: [] for name in INSERT}
        self._in_tx = False

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self, *, fresh: bool = False) -> None:
        """Open (creating if needed) the store; `fresh` empties it first."""
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.executescript(SCHEMA)
            await self._db.execute("PRAGMA synchronous = NORMAL")
            # Customer-keyed indexes take inserts in random order: with SQLite's default
            # 2 MB page cache a million-event store thrashes; 64 MB keeps them warm.
            await self._db.execute("PRAGMA cache_size = -65536")
            await self._db.execute("PRAGMA temp_store = MEMORY")
            await self._db.execute("PRAGMA busy_timeout = 5000")
            await self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (sqlite3.Error, OSError) as exc:
            if self._db is not None:
                await self._db.close()
                self._db = None
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    async def close(self) -> None:
        if self._db is not None:
            if self._in_tx:
                await self._db.execute("ROLLBACK")
                self._in_tx = False
            await self._db.close()
            self._db = None

    async def add(self, table: str, rows: Iterable[Row]) -> None:
        """Queue rows for `table`; large batches go to SQLite at once (inside the open checkpoint)."""
        pending = self._pending[table]
        pending.extend(rows)
        if len(pending) >= BATCH_ROWS:
            await self._write(table)

    async def _begin(self) -> None:
        if not self._in_tx:
            await self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    async def _write(self, table: str) -> None:
        rows = self._pending[table]
        if not rows:
            return
        self._pending[table] = []
        await self._begin()
        if self.gil_free_inserts:
            await self.db.execute(INSERT[table], (orjson.dumps(rows).decode(),))
        else:
            await self.db.executemany(INSERT_ROWS[table], rows)

    async def checkpoint(self, meta: dict[str, str]) -> None:
        """Write everything queued and `meta`, and commit them as one transaction."""
        for table in TABLE_ORDER:
            await self._write(table)
        await self._begin()
        await self.db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(meta.items())
        )
        await self.db.execute("COMMIT")
        self._in_tx = False

    # ---- reads for resume and reports ----

    async def meta(self) -> dict[str, str]:
        async with self.db.execute("SELECT key, value FROM meta") as cur:
            return {k: v async for k, v in cur}

    async def cap_usage_since(self, since: datetime) -> list[tuple[str, str, str]]:
        """(customer, at, channel) of capped sends after `since`, oldest first."""
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S")
        async with self.db.execute(
            "SELECT customer, at, channel FROM cap_usage WHERE at >= ? ORDER BY customer, at",
            (stamp,),
        ) as cur:
            return [(r[0], r[1], r[2]) async for r in cur]

    async def timer_heads(self) -> list[tuple[str, str]]:
        """(customer, earliest due) for every customer with pending timers."""
        async with self.db.execute(
            "SELECT customer, next_due FROM profiles WHERE next_due IS NOT NULL"
        ) as cur:
            return [(r[0], r[1]) async for r in cur]


class ProfileReader:
    """Read-only access for activating passivated profiles (sync, WAL reader)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def load(self, customer: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT state FROM profiles WHERE customer = ?", (customer,)
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def close(self) -> None:
        self._conn.close()


def event_store_row(line: int, event: Event, applied_at: datetime, late: bool, raw: bytes) -> Row:
    """The `events` row (columns in `_TABLES` order) for one applied log line."""
    stamp = format_timestamp(event.at)
    return (
        line,
        event.customer,
        stamp,
        format_timestamp(applied_at) if late else stamp,
        event.kind,
        event.name,
        event.message_id,
        int(late),
        raw.decode("utf-8", "replace").rstrip("\r\n"),
    )


def ledger_store_row(
    line: dict[str, Any],
    ts: int,
    seq: int,
    explanation: str,
    deferred_until: str | None = None,
) -> Row:
    """The `ledger` row (columns in `_TABLES` order) for one ledger line."""
    handoff = line["handoff_from"]
    return (
        line["at"],
        ts,
        line["customer"],
        seq,
        line["message_id"],
        line["journey"],
        line["step"],
        line["channel"],
        line["category"],
        line["outcome"],
        line["reason"],
        None if handoff is None else orjson.dumps(handoff).decode(),
        deferred_until,
        explanation,
        encode_line(line),
    )


class StoreQueries:
    """Small read-only lookups the live service needs (sync; run them off the event loop)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def customer_for_phone(self, phone: str) -> str | None:
        row = self._conn.execute(
            "SELECT customer FROM profiles WHERE phone = ? ORDER BY updated_at DESC LIMIT 1",
            (phone,),
        ).fetchone()
        return None if row is None else str(row[0])

    def pending_outbox(self) -> list[dict[str, Any]]:
        """Sends decided and committed whose result was never recorded (a crash between)."""
        rows = self._conn.execute(
            "SELECT payload FROM outbox WHERE status = 'pending' ORDER BY decided_at"
        ).fetchall()
        return [dict(orjson.loads(r[0])) for r in rows]

    def ledger_since(self, last_id: int) -> list[tuple[int, str | None, str, str | None]]:
        """(id, channel, outcome, reason) of ledger rows after `last_id`."""
        return [
            (int(r[0]), r[1], str(r[2]), r[3])
            for r in self._conn.execute(
                "SELECT id, channel, outcome, reason FROM ledger WHERE id > ? ORDER BY id",
                (last_id,),
            ).fetchall()
        ]

    def close(self) -> None:
        self._conn.close()
