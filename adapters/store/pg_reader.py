"""`PostgresReader`: read-only queries over a whole PostgreSQL store (a `StoreReader`).

One autocommit connection whose `search_path` is the main store's schema. For a
partitioned run it creates, like `parts.attach_parts` does for SQLite, a TEMP view per
per-customer table over the parts' schemas (`UNION ALL`); PostgreSQL looks in the
session's temporary schema first, so every query below reads the whole store
unchanged. Ordered reads stay streamed: the planner merges the parts' index scans
(Merge Append) instead of sorting.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg

from omniconsole.adapters.store.base import InboxItem, LedgerSummary, StoreError
from omniconsole.adapters.store.parts import PART_TABLES, PARTS_KEY
from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.adapters.store.shared_reads import SharedReads
from omniconsole.domain.records import EventRecord, InstanceRecord, LedgerRecord

#: bytes of ledger lines gathered before a write to the output file
_CHUNK = 1 << 20


def attach_part_views(conn: psycopg.Connection[Any]) -> list[str]:
    """Create the TEMP views that show a partitioned store's parts as one; the parts'
    schema names (empty: a single store, nothing created)."""
    row = (
        conn.execute("SELECT value FROM meta WHERE key = %s", (PARTS_KEY,)).fetchone()
        if _has_meta(conn)
        else None
    )
    names = orjson.loads(row[0]) if row else []
    if not isinstance(names, list) or not names:
        return []
    schemas = [str(n) for n in names]
    for table in PART_TABLES:
        union = " UNION ALL ".join(f'SELECT * FROM "{s}".{table}' for s in schemas)
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS {union}")
    return schemas


def _has_meta(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    return bool(row and row[0])


class PostgresReader(SharedReads):
    """Read-only queries over one PostgreSQL store and its parts. Use from one thread."""

    PARAM = "%s"

    def __init__(self, location: PgLocation) -> None:
        self.location = location
        self._conn = location.connect(autocommit=True)
        try:
            if not _has_meta(self._conn):
                raise StoreError(f"no store at {location.masked}")
            self.parts = attach_part_views(self._conn)
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(
                f"cannot read store {location.masked}: {location.scrub(exc)}"
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}

    def export_ledger(self, out: Path) -> int:
        """Write the ledger in its total order (time, customer, sequence); line count.

        COPY streams one row per message. Its text format escapes only backslashes and
        control characters; a ledger line is JSON, which has no raw control characters,
        so undoubling the backslashes restores it byte for byte.
        """
        count = 0
        size = 0
        chunk: list[bytes] = []
        query = "COPY (SELECT line FROM ledger ORDER BY ts, customer, seq) TO STDOUT"
        with out.open("wb") as handle, self._conn.cursor() as cur, cur.copy(query) as copy:
            for row in copy:
                data = bytes(row)
                if b"\\" in data:
                    data = data.replace(b"\\\\", b"\\")
                chunk.append(data)
                size += len(data)
                count += 1
                if size >= _CHUNK:
                    handle.write(b"".join(chunk))
                    chunk, size = [], 0
            handle.write(b"".join(chunk))
        return count

    def export_rejects(self, out: Path) -> int:
        # The driver writes the lines it refused (the main store); a partition writes
        # the events of the customers it quarantined in its own part. Ordered as SQLite
        # orders them: by line, then the main store before the parts, then as written.
        arms = ["SELECT line, reason, raw, -1 AS part, id FROM rejects"]
        arms += [
            f'SELECT line, reason, raw, {k}, id FROM "{schema}".rejects'
            for k, schema in enumerate(self.parts)
        ]
        count = 0
        with out.open("wb") as handle:
            for line, reason, raw, _, _ in self._conn.execute(
                " UNION ALL ".join(arms) + " ORDER BY 1, 4, 5"
            ):
                handle.write(orjson.dumps({"line": line, "reason": reason, "raw": raw}) + b"\n")
                count += 1
        return count

    def ledger_summary(self) -> LedgerSummary:
        conn = self._conn
        channels: dict[str | None, dict[str, int]] = {}
        for channel, outcome, n in conn.execute(
            "SELECT channel, outcome, count(*) FROM ledger GROUP BY channel, outcome"
        ):
            channels.setdefault(channel, {})[outcome] = int(n)
        reasons: dict[str, int] = {
            str(reason): int(n)
            for reason, n in conn.execute(
                "SELECT reason, count(*) FROM ledger WHERE outcome = 'suppressed'"
                " GROUP BY reason ORDER BY reason"
            )
        }
        row = conn.execute(
            "SELECT count(*) FROM ledger WHERE outcome = 'sent' AND handoff_from IS NOT NULL"
        ).fetchone()
        journeys: dict[str, tuple[int, int]] = {
            str(journey): (int(entered), int(converted))
            for journey, entered, converted in conn.execute(
                "SELECT journey, count(*), count(*) FILTER (WHERE status = 'converted')"
                " FROM journey_instances GROUP BY journey"
            )
        }
        return LedgerSummary(channels, reasons, int(row[0]) if row else 0, journeys)

    def message_ids(self, up_to_line: int | None = None) -> set[str]:
        if up_to_line is None:
            rows = self._conn.execute("SELECT message_id FROM events WHERE message_id IS NOT NULL")
        else:
            rows = self._conn.execute(
                "SELECT message_id FROM events WHERE message_id IS NOT NULL AND line <= %s",
                (up_to_line,),
            )
        return {str(row[0]) for row in rows}

    def inbox(self, customer: str) -> list[InboxItem]:
        return [
            InboxItem(at, journey, step, subject, body, bool(read))
            for at, journey, step, subject, body, read in self._conn.execute(
                "SELECT at, journey, step, subject, body, read FROM inbox WHERE customer = %s"
                " ORDER BY at DESC",
                (customer,),
            )
        ]

    def instances(self, journeys: Sequence[str]) -> Iterator[InstanceRecord]:
        if not journeys:
            return
        with self._conn.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(InstanceRecord._fields)} FROM journey_instances"
                " WHERE journey = ANY(%s)",
                (list(journeys),),
            )
            while rows := cur.fetchmany(10_000):
                for row in rows:
                    yield InstanceRecord(*row)

    def customer_events(self, customer: str) -> list[EventRecord]:
        return [
            EventRecord(*row)
            for row in self._conn.execute(
                f"SELECT {', '.join(EventRecord._fields)} FROM events WHERE customer = %s"
                " ORDER BY id",
                (customer,),
            )
        ]

    def customer_ledger(self, customer: str) -> list[LedgerRecord]:
        return [
            LedgerRecord(*row)
            for row in self._conn.execute(
                f"SELECT {', '.join(LedgerRecord._fields)} FROM ledger WHERE customer = %s"
                " ORDER BY ts, seq",
                (customer,),
            )
        ]

    def message_customer(self, message_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT customer FROM ledger WHERE message_id = %s LIMIT 1", (message_id,)
        ).fetchone()
        return None if row is None else str(row[0])
