"""The `Store` in SQLite: WAL mode, written in batches through aiosqlite.

One writer (the store writer actor) holds a `SqliteWriter`; everything written between
two `checkpoint` calls commits as one transaction, so a reader — or a restart after a
crash — sees whole checkpoints only. Profile activation reads through a separate
read-only connection (`SqliteProfiles`), which WAL lets run beside the writer; tools
read through `SqliteReader` (`sqlite_reader.py`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat
from pathlib import Path
from typing import Any, cast

import aiosqlite
import orjson

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.parts import (
    MAX_PARTS,
    PARTS_KEY,
    part_paths,
    parts_meta,
    read_part_names,
    remove_parts,
)
from omniconsole.adapters.store.progress import Progress, remove_progress, write_progress
from omniconsole.adapters.store.schema import (
    COUNTERS_BACKFILL,
    SCHEMA,
    SCHEMA_VERSION,
    outbox_migration,
)
from omniconsole.adapters.store.sqlite_outbox import SqliteOutbox
from omniconsole.adapters.store.sqlite_reader import SqliteReader
from omniconsole.adapters.store.tally import Tally
from omniconsole.domain.records import (
    RECORD_TYPES,
    CapUsageRecord,
    CounterRecord,
    EventRecord,
    HealthRecord,
    HourCounterRecord,
    InboxRecord,
    InstanceCounterRecord,
    InstanceRecord,
    LedgerRecord,
    OutboxRecord,
    ProfileRecord,
    QuarantineRecord,
    RejectRecord,
    StoreRecord,
)

# record type -> (table, verb, conflict clause); the columns are the record's fields.
# A batch goes to SQLite as a few multi-row INSERTs (`VALUES (?, ..), (?, ..), ..`, up
# to ~VALUES_PER_INSERT values each): each is bound in C and inserted under one release
# of the GIL. Measured on the rows of a 112k-event replay (SQLite 3.40), CPU per row:
# 2.4-6.3 us, against 3.6-8.8 us with executemany (which also takes the GIL back after
# every row: with the actor threads busy, that convoy made the writer the bottleneck)
# and 4.4-16 us as one JSON array expanded by json_each (each `->>` re-parses the row).
_TABLES: dict[type[StoreRecord], tuple[str, str, str]] = {
    EventRecord: ("events", "INSERT", ""),
    RejectRecord: ("rejects", "INSERT", ""),
    LedgerRecord: ("ledger", "INSERT", ""),
    ProfileRecord: (
        "profiles",
        "INSERT",
        " ON CONFLICT(customer) DO UPDATE SET email=excluded.email,"
        " phone=excluded.phone, updated_at=excluded.updated_at,"
        " next_due=excluded.next_due, state=excluded.state",
    ),
    InstanceRecord: ("journey_instances", "INSERT OR REPLACE", ""),
    CapUsageRecord: ("cap_usage", "INSERT OR IGNORE", ""),
    InboxRecord: ("inbox", "INSERT OR IGNORE", ""),
    HealthRecord: ("adapter_health", "INSERT OR REPLACE", ""),
    OutboxRecord: ("outbox", "INSERT OR REPLACE", ""),
    QuarantineRecord: ("quarantine", "INSERT OR IGNORE", ""),
    # counts add up: what this checkpoint counted, plus what the store holds
    CounterRecord: (
        "counters",
        "INSERT",
        " ON CONFLICT(journey, step, channel, outcome, reason, resend, handoff)"
        " DO UPDATE SET total = total + excluded.total",
    ),
    HourCounterRecord: (
        "counters_hourly",
        "INSERT",
        " ON CONFLICT(hour, journey, channel, outcome, reason)"
        " DO UPDATE SET total = total + excluded.total",
    ),
    InstanceCounterRecord: (
        "instance_counters",
        "INSERT",
        " ON CONFLICT(journey, status) DO UPDATE SET total = total + excluded.total",
    ),
}
assert set(_TABLES) == set(RECORD_TYPES)


def table_of(record_type: type[StoreRecord]) -> str:
    """The table that holds records of `record_type`."""
    return _TABLES[record_type][0]


def write_rule(record_type: type[StoreRecord]) -> tuple[str, str, str]:
    """(table, verb, conflict clause) records of `record_type` are written with: the
    PostgreSQL store follows the same rules (`pg_schema`)."""
    return _TABLES[record_type]


#: bound values per INSERT statement (SQLite allows 32,766 since 3.32)
VALUES_PER_INSERT = 16_000


def rows_per_insert(record_type: type[StoreRecord]) -> int:
    """Rows one INSERT of `record_type` carries."""
    return max(1, VALUES_PER_INSERT // len(record_type._fields))


def insert_sql(record_type: type[StoreRecord], rows: int) -> str:
    """The INSERT of `rows` records of `record_type` (their fields bound in order)."""
    table, verb, conflict = _TABLES[record_type]
    columns = record_type._fields
    row = "(" + ", ".join("?" * len(columns)) + ")"
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}{conflict}"


#: the full-size INSERT of each record type (a batch's remainder gets its own)
INSERT = {t: insert_sql(t, rows_per_insert(t)) for t in RECORD_TYPES}


def insert_parts(rows: int, per: int) -> Iterator[int]:
    """Rows per INSERT of a batch of `rows`: full ones of `per`, then the remainder as
    powers of two, largest first. Each row count is a statement, sqlite3 keeps the last
    128 prepared, and one of 16,000 values holds ~2 MB: remainders of every size grew a
    partition's SQLite memory past 150 MB. Now ~12 shapes per type (~4 MB in all)."""
    full, rest = divmod(rows, per)
    yield from repeat(per, full)
    bit = 1 << rest.bit_length()
    while bit := bit >> 1:
        if rest & bit:
            yield bit


BATCH_ROWS = 5000
#: the journey of each instance in a batch that the store does not hold yet (an entry)
NEW_INSTANCES = (
    "SELECT j FROM (SELECT DISTINCT value ->> 0 AS c, value ->> 1 AS j, value ->> 2 AS i"
    " FROM json_each(?)) WHERE NOT EXISTS (SELECT 1 FROM journey_instances"
    " WHERE customer = c AND journey = j AND instance = i)"
)


#: SQLite's `synchronous` levels a store may be opened with (OMNICONSOLE_SQLITE_SYNCHRONOUS)
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")


def synchronous_from_env() -> str:
    """OMNICONSOLE_SQLITE_SYNCHRONOUS, default NORMAL.

    In WAL mode NORMAL never corrupts the store and survives a crash of the process
    (kill -9 included): a commit is in the WAL file when it returns. It does not fsync
    at each commit, so after a power loss or an OS crash the last commits — events
    already acknowledged with a 200, sends already marked sent — may be gone. FULL
    fsyncs the WAL at every commit: acknowledged means on disk, at the cost of one
    fsync per checkpoint and per delivery result.
    """
    value = os.environ.get("OMNICONSOLE_SQLITE_SYNCHRONOUS", "").strip().upper() or "NORMAL"
    if value not in SYNCHRONOUS_LEVELS:
        raise StoreError(
            f"OMNICONSOLE_SQLITE_SYNCHRONOUS must be one of {', '.join(SYNCHRONOUS_LEVELS)}, "
            f"got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class SqliteStore:
    """A store in one SQLite file (a `Store`); a partitioned run's parts lie beside it
    (`replay.db` → `replay.p0.db`, `replay.p1.db`, … see `parts`). `synchronous` is
    SQLite's durability level for every connection that writes (see
    `synchronous_from_env`)."""

    path: Path
    synchronous: str = field(default_factory=synchronous_from_env)

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def writer(self) -> SqliteWriter:
        return SqliteWriter(self.path, synchronous=self.synchronous)

    def outbox(self) -> SqliteOutbox:
        return SqliteOutbox(self.path, synchronous=self.synchronous)

    def profiles(self) -> SqliteProfiles:
        return SqliteProfiles(self.path)

    def reader(self) -> SqliteReader:
        return SqliteReader(self.path)

    def part(self, index: int, count: int) -> SqliteStore:
        return SqliteStore(part_paths(self.path, count)[index], self.synchronous)

    def max_partitions(self) -> int:
        return MAX_PARTS

    def stored_partitions(self) -> int:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error:
            return 1
        try:
            return max(1, len(read_part_names(conn)))
        finally:
            conn.close()

    def parts_meta(self, count: int) -> dict[str, str]:
        return {PARTS_KEY: parts_meta(part_paths(self.path, count))}

    def remove_parts(self) -> None:
        remove_parts(self.path)

    def publish_progress(self, progress: Progress) -> None:
        write_progress(self.path, progress)

    def forget_progress(self) -> None:
        remove_progress(self.path)


class SqliteWriter:
    """The async writer of one SQLite file (a `StoreWriter`). Use from one event loop."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise StoreError(f"unknown synchronous level {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._pending: dict[type[StoreRecord], list[StoreRecord]] = {t: [] for t in RECORD_TYPES}
        self._in_tx = False
        #: the console's counts of what this checkpoint writes (see `tally`)
        self.tally = Tally()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self, *, fresh: bool) -> None:
        """Open (creating if needed) the store; `fresh` empties it first."""
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.executescript(SCHEMA)
            await self._backfill_counters()
            async with self._db.execute("PRAGMA table_info(outbox)") as cur:
                columns = {str(row[1]) async for row in cur}
            for statement in outbox_migration(columns):
                await self._db.execute(statement)
            await self._db.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Customer-keyed indexes take inserts in random order: with SQLite's default
            # 2 MB page cache a million-event store thrashes; 64 MB keeps them warm.
            await self._db.execute("PRAGMA cache_size = -65536")
            await self._db.execute("PRAGMA temp_store = MEMORY")
            await self._db.execute("PRAGMA busy_timeout = 5000")
            await self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (sqlite3.Error, OSError) as exc:
            if self._db is not None:
                await self._db.close()
                self._db = None
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    async def _backfill_counters(self) -> None:
        """A store written before the console's counts were kept gets them, once."""
        db = self.db
        async with db.execute("SELECT value FROM meta WHERE key = 'schema_version'") as cur:
            row = await cur.fetchone()
        if row is None or not str(row[0]).isdigit() or int(row[0]) >= 3:
            return  # a new store, or one that has counted from the start
        async with db.execute("SELECT EXISTS (SELECT 1 FROM counters)") as cur:
            counted = await cur.fetchone()
        if counted is not None and counted[0]:
            return
        await db.execute("BEGIN IMMEDIATE")
        for statement in COUNTERS_BACKFILL:
            await db.execute(statement)
        await db.execute("COMMIT")

    async def close(self) -> None:
        if self._db is not None:
            if self._in_tx:
                await self._db.execute("ROLLBACK")
                self._in_tx = False
            await self._db.close()
            self._db = None

    async def add(self, records: Sequence[StoreRecord]) -> None:
        """Queue records (all of one type); large batches go to SQLite at once (inside the
        open checkpoint)."""
        if not records:
            return
        record_type = type(records[0])
        if record_type is LedgerRecord:
            self.tally.add_decisions(records)  # type: ignore[arg-type]
        pending = self._pending[record_type]
        pending.extend(records)
        if len(pending) >= BATCH_ROWS:
            await self._write(record_type)

    async def _begin(self) -> None:
        if not self._in_tx:
            await self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    async def _write(self, record_type: type[StoreRecord]) -> None:
        rows = self._pending[record_type]
        if not rows:
            return
        self._pending[record_type] = []
        await self._begin()
        if record_type is InstanceRecord:
            # an instance the store does not hold yet has just been entered (ids and
            # journeys hold no NUL character, which `->>` would cut at: the door refuses it)
            # (customer, journey, instance) as plain tuples: orjson writes those itself,
            # a NamedTuple only through a Python `default` call per row
            payload = orjson.dumps([row[:3] for row in rows]).decode()
            async with self.db.execute(NEW_INSTANCES, (payload,)) as cur:
                entered = [str(r[0]) async for r in cur]
            self.tally.add_instances(rows, entered)  # type: ignore[arg-type]
        # bound value by value: text is stored whole (a NUL character included)
        per = rows_per_insert(record_type)
        start = 0
        for count in insert_parts(len(rows), per):
            part = rows[start : start + count]
            start += count
            sql = INSERT[record_type] if count == per else insert_sql(record_type, count)
            await self.db.execute(sql, list(chain.from_iterable(part)))  # flattened in C

    async def checkpoint(self, meta: Mapping[str, str]) -> None:
        """Write everything queued, the counts of it, and `meta`; commit them as one
        transaction."""
        await self._write(InstanceRecord)  # its entries are counted as it is written
        decisions, hours, instances = self.tally.records()
        self._pending[CounterRecord].extend(decisions)
        self._pending[HourCounterRecord].extend(hours)
        self._pending[InstanceCounterRecord].extend(instances)
        for record_type in RECORD_TYPES:
            await self._write(record_type)
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

    async def quarantined(self) -> dict[str, str]:
        """customer -> reason, for every quarantined customer."""
        async with self.db.execute("SELECT customer, reason FROM quarantine") as cur:
            return {r[0]: r[1] async for r in cur}

    async def timer_heads(self) -> list[tuple[str, str]]:
        """(customer, earliest due) for every customer with pending timers."""
        async with self.db.execute(
            "SELECT customer, next_due FROM profiles WHERE next_due IS NOT NULL"
        ) as cur:
            return [(r[0], r[1]) async for r in cur]


class SqliteProfiles:
    """Activates passivated profiles (a `ProfileSource`): a read-only WAL reader."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def load(self, customer: str) -> dict[str, Any] | None:
        state = self.load_state(customer)
        return None if state is None else dict(orjson.loads(state))

    def load_state(self, customer: str) -> str | None:
        row = self._conn.execute(
            "SELECT state FROM profiles WHERE customer = ?", (customer,)
        ).fetchone()
        return None if row is None else cast(str, row[0])

    def close(self) -> None:
        self._conn.close()
