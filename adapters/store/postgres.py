"""The `Store` in PostgreSQL: one schema per store, written with COPY through psycopg 3.

Why psycopg 3 (not asyncpg): one library gives the sync connections the console's
worker threads and the profile shards read with, and the same COPY and type adaptation
for the writer; its COPY was as fast as asyncpg's in the spike (173k vs 142k ledger
rows/s). The writer uses a plain *sync* connection although `StoreWriter` is async:
the store writer actor owns its thread and its event loop, nothing else runs on that
loop, so a blocking call there blocks no one — and an `AsyncConnection` measured the
same throughput for more moving parts.

Like SQLite, everything written between two `checkpoint` calls is one transaction;
the checkpoint commits it together with `meta`, so a reader or a restart sees whole
checkpoints only. Plain tables (events, rejects, ledger) take each batch as a COPY;
tables SQLite writes with a conflict clause take it as a COPY into a TEMP staging table
and one `INSERT ... SELECT ... ON CONFLICT` (rows are de-duplicated first, so a batch
with the same key twice resolves as SQLite resolves it). Every checkpoint also checks
the store's fence (see `pg_schema`) and announces itself with NOTIFY, so consoles and
tests can wait for checkpoints instead of polling.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

import orjson
import psycopg

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.parts import PARTS_KEY
from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.adapters.store.pg_outbox import PostgresOutbox
from omniconsole.adapters.store.pg_reader import PostgresReader
from omniconsole.adapters.store.pg_schema import (
    COUNTERS_BACKFILL,
    DDL,
    NOTIFY_CHANNEL,
    SCHEMA_VERSION,
    TABLES,
    UPSERT,
    StoreFenced,
    Upsert,
    postgres_outbox_migration,
)
from omniconsole.adapters.store.progress import Progress
from omniconsole.adapters.store.tally import Tally
from omniconsole.domain.records import (
    RECORD_TYPES,
    CounterRecord,
    HourCounterRecord,
    InstanceCounterRecord,
    InstanceRecord,
    LedgerRecord,
    StoreRecord,
)

#: rows queued per table before they go to PostgreSQL (inside the open checkpoint)
BATCH_ROWS = 5000
#: partitions of one run: schemas are cheap, but each partition holds connections
MAX_PARTITIONS = 256
#: the journey of each staged instance the store does not hold yet (an entry)
NEW_INSTANCES = (
    "SELECT s.journey FROM (SELECT DISTINCT customer, journey, instance"
    " FROM _stage_journey_instances) AS s WHERE NOT EXISTS (SELECT 1 FROM journey_instances t"
    " WHERE t.customer = s.customer AND t.journey = s.journey AND t.instance = s.instance)"
)


def _clean(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite can. Only a rejected line's raw text or a
    # trait a client sent with \u0000 can carry one: it becomes U+FFFD, as undecodable
    # bytes already do.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class PostgresStore:
    """A store in one schema of a PostgreSQL database (a `Store`); a partitioned run's
    parts are the schemas `<schema>_p0`, `<schema>_p1`, … of the same database."""

    location: PgLocation

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """The store a `postgresql://` URL names."""
        return cls(PgLocation.parse(url))

    def describe(self) -> str:
        return self.location.masked

    def exists(self) -> bool:
        with self.location.connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f'"{self.location.schema}".meta',)
            ).fetchone()
            return bool(row and row[0])

    def writer(self) -> PostgresWriter:
        return PostgresWriter(self.location)

    def profiles(self) -> PostgresProfiles:
        return PostgresProfiles(self.location)

    def reader(self) -> PostgresReader:
        return PostgresReader(self.location)

    def outbox(self) -> PostgresOutbox:
        return PostgresOutbox(self.location)

    def part(self, index: int, count: int) -> PostgresStore:
        return PostgresStore(self.location.at(f"{self.location.schema}_p{index}"))

    def max_partitions(self) -> int:
        return MAX_PARTITIONS

    def stored_partitions(self) -> int:
        if not self.exists():
            return 1
        with self.location.connect(autocommit=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (PARTS_KEY,)).fetchone()
        names = orjson.loads(row[0]) if row else []
        return max(1, len(names)) if isinstance(names, list) else 1

    def parts_meta(self, count: int) -> dict[str, str]:
        names = [self.part(k, count).location.schema for k in range(count)]
        return {PARTS_KEY: orjson.dumps(names).decode()}

    def publish_progress(self, progress: Progress) -> None:
        fact = orjson.dumps(asdict(progress)).decode()
        try:  # on a connection of its own: the replay's transaction holds its rows
            with self.location.connect(autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO progress (id, fact) VALUES (1, %s)"
                    " ON CONFLICT (id) DO UPDATE SET fact = EXCLUDED.fact",
                    (fact,),
                )
        except (StoreError, psycopg.Error):
            pass  # progress is a courtesy: never stop the replay for it

    def forget_progress(self) -> None:
        with (
            contextlib.suppress(StoreError, psycopg.Error),
            self.location.connect(autocommit=True) as conn,
        ):
            conn.execute("DELETE FROM progress")

    def remove_parts(self) -> None:
        pattern = f"^{re.escape(self.location.schema)}_p[0-9]+$"
        with self.location.connect(autocommit=True) as conn:
            names = [
                str(r[0])
                for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname ~ %s", (pattern,)
                )
            ]
            for name in names:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class PostgresWriter:
    """The writer of one store schema (a `StoreWriter`). Use from one thread."""

    def __init__(self, location: PgLocation) -> None:
        self.location = location
        self._conn: psycopg.Connection[Any] | None = None
        self._pending: dict[type[StoreRecord], list[StoreRecord]] = {t: [] for t in RECORD_TYPES}
        self.epoch = 0
        #: the console's counts of what this checkpoint writes (see `tally`)
        self.tally = Tally()

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise StoreError("store is not open")
        return self._conn

    def _fail(self, action: str, exc: psycopg.Error) -> StoreError:
        return StoreError(
            f"cannot {action} store {self.location.masked}: {self.location.scrub(exc)}"
        )

    async def open(self, *, fresh: bool) -> None:
        """Create the schema (emptied first when `fresh`), take the fence, commit."""
        schema = self.location.schema
        conn = self.location.connect(autocommit=False)
        try:
            if fresh:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(DDL)
            columns = {
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = 'outbox'",
                    (schema,),
                )
            }
            for statement in postgres_outbox_migration(columns):
                conn.execute(statement)
            self._backfill_counters(conn)
            for record_type in UPSERT:
                table = TABLES[record_type]
                conn.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS _stage_{table}"
                    f' (LIKE "{schema}".{table} INCLUDING DEFAULTS)'
                )
            row = conn.execute(
                "INSERT INTO fence (id, epoch) VALUES (1, 1)"
                " ON CONFLICT (id) DO UPDATE SET epoch = fence.epoch + 1 RETURNING epoch"
            ).fetchone()
            self.epoch = int(row[0]) if row else 0
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(SCHEMA_VERSION),),
            )
            conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise self._fail("open", exc) from None
        self._conn = conn

    def _backfill_counters(self, conn: psycopg.Connection[Any]) -> None:
        """A store written before the console's counts were kept gets them, once (in
        the transaction that opens it)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit() or int(row[0]) >= 3:
            return  # a new store, or one that has counted from the start
        counted = conn.execute("SELECT EXISTS (SELECT 1 FROM counters)").fetchone()
        if counted is not None and counted[0]:
            return
        for statement in COUNTERS_BACKFILL:
            conn.execute(statement)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):  # gone: nothing uncommitted survives
                conn.rollback()
            conn.close()

    async def add(self, records: Sequence[StoreRecord]) -> None:
        """Queue records (all of one type); full batches go to PostgreSQL at once."""
        if not records:
            return
        record_type = type(records[0])
        if record_type is LedgerRecord:
            self.tally.add_decisions(records)  # type: ignore[arg-type]
        pending = self._pending[record_type]
        pending.extend(records)
        if len(pending) >= BATCH_ROWS:
            self._write(record_type)

    def _write(self, record_type: type[StoreRecord]) -> None:
        rows: Sequence[StoreRecord] = self._pending[record_type]
        if not rows:
            return
        self._pending[record_type] = []
        upsert = UPSERT.get(record_type)
        # one INSERT may not meet the same key twice: a batch that holds a key k times
        # goes in k rounds, in order, so each row meets the ones before as in SQLite
        rounds = [rows] if upsert is None else _rounds(record_type, rows, upsert)
        for batch in rounds:
            try:
                self._copy(record_type, batch, upsert)
            except psycopg.DataError:
                # a NUL in some text (see `_clean`): undo this batch only, write it clean
                try:
                    self.conn.execute("ROLLBACK TO SAVEPOINT batch")
                    clean = [tuple(_clean(v) for v in row) for row in batch]
                    self._copy(record_type, clean, upsert)
                except psycopg.Error as exc:
                    raise self._fail("write", exc) from None
            except psycopg.Error as exc:
                raise self._fail("write", exc) from None

    def _copy(
        self, record_type: type[StoreRecord], rows: Sequence[Sequence[Any]], upsert: Upsert | None
    ) -> None:
        conn = self.conn
        table = TABLES[record_type]
        target = table if upsert is None else f"_stage_{table}"
        columns = ", ".join(record_type._fields)
        with conn.cursor() as cur:
            cur.execute("SAVEPOINT batch")
            with cur.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            entered: list[str] | None = None
            if record_type is InstanceRecord:  # an instance not held yet was just entered
                entered = [str(r[0]) for r in cur.execute(NEW_INSTANCES).fetchall()]
            if upsert is not None:
                cur.execute(upsert.statement)
                cur.execute(f"TRUNCATE {target}")
        if entered is not None:  # counted once the rows are in (a retry counts once)
            self.tally.add_instances([InstanceRecord._make(r) for r in rows], entered)

    async def checkpoint(self, meta: Mapping[str, str]) -> None:
        """Write everything queued, the counts of it, and `meta`; commit them as one
        transaction — unless another writer has taken this store over since `open`
        (StoreFenced)."""
        self._write(InstanceRecord)  # its entries are counted as it is written
        decisions, hours, instances = self.tally.records()
        self._pending[CounterRecord].extend(decisions)
        self._pending[HourCounterRecord].extend(hours)
        self._pending[InstanceCounterRecord].extend(instances)
        for record_type in RECORD_TYPES:
            self._write(record_type)
        conn = self.conn
        try:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [(k, _clean(v)) for k, v in meta.items()],
                )
                cur.execute(
                    "UPDATE fence SET epoch = epoch WHERE id = 1 AND epoch = %s", (self.epoch,)
                )
                if cur.rowcount != 1:
                    conn.rollback()
                    raise StoreFenced(
                        f"store {self.location.masked} was opened by another writer"
                        f" (this one had epoch {self.epoch}): not committing"
                    )
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, self.location.schema))
            conn.commit()
        except psycopg.Error as exc:
            raise self._fail("commit to", exc) from None

    # ---- reads for resume and reports ----

    async def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    async def cap_usage_since(self, since: datetime) -> list[tuple[str, str, str]]:
        """(customer, at, channel) of capped sends after `since`, oldest first."""
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S")
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in self.conn.execute(
                "SELECT customer, at, channel FROM cap_usage WHERE at >= %s ORDER BY customer, at",
                (stamp,),
            )
        ]

    async def quarantined(self) -> dict[str, str]:
        """customer -> reason, for every quarantined customer."""
        return {str(r[0]): str(r[1]) for r in self.conn.execute(
            "SELECT customer, reason FROM quarantine")}  # fmt: skip

    async def timer_heads(self) -> list[tuple[str, str]]:
        """(customer, earliest due) for every customer with pending timers."""
        return [
            (str(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT customer, next_due FROM profiles WHERE next_due IS NOT NULL"
            )
        ]


def _rounds(
    record_type: type[StoreRecord], rows: Sequence[StoreRecord], upsert: Upsert
) -> list[list[StoreRecord]]:
    """`rows` split so that no round holds a key twice: round k has each key's k-th row."""
    where = [record_type._fields.index(k) for k in upsert.keys]
    seen: dict[tuple[Any, ...], int] = {}
    rounds: list[list[StoreRecord]] = []
    for row in rows:
        key = tuple(row[i] for i in where)
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(row)
    return rounds


class PostgresProfiles:
    """Activates passivated profiles (a `ProfileSource`): an autocommit connection that
    sees what the writer has committed."""

    def __init__(self, location: PgLocation) -> None:
        self._conn = location.connect(autocommit=True)

    def load(self, customer: str) -> dict[str, Any] | None:
        state = self.load_state(customer)
        return None if state is None else dict(orjson.loads(state))

    def load_state(self, customer: str) -> str | None:
        row = self._conn.execute(
            "SELECT state FROM profiles WHERE customer = %s", (customer,), prepare=True
        ).fetchone()
        return None if row is None else cast(str, row[0])

    def close(self) -> None:
        self._conn.close()
