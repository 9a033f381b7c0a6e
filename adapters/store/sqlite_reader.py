"""`SqliteReader`: read-only queries over a whole SQLite store (a `StoreReader`).

One read-only connection sees the main file and, for a partitioned run, every part as
one store (`parts.open_combined`). It serves what a finished replay writes out (the
ledger, the rejects, the report counts), what the live service looks up,
`omniconsole inbox` and `omniconsole explain` (one customer's events and ledger).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from omniconsole.adapters.store.base import InboxItem, LedgerSummary, StoreError
from omniconsole.adapters.store.parts import PartsError, open_combined, read_part_names
from omniconsole.adapters.store.shared_reads import SharedReads
from omniconsole.domain.records import EventRecord, InstanceRecord, LedgerRecord


class SqliteReader(SharedReads):
    """Read-only queries over one SQLite store and its parts. Use from one thread."""

    PARAM = "?"

    def __init__(self, path: Path) -> None:
        try:
            self._conn = open_combined(path)
        except (sqlite3.Error, PartsError) as exc:
            raise StoreError(f"cannot read store {path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self._conn.execute("SELECT key, value FROM main.meta")}

    def export_ledger(self, out: Path) -> int:
        """Write the ledger in its total order (time, customer, sequence); line count.

        Over parts, SQLite merges the parts' index-ordered scans (MERGE UNION ALL)
        instead of sorting the whole ledger: a customer is in one part, so the merge is
        the total order.
        """
        conn = self._conn
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

    def export_rejects(self, out: Path) -> int:
        # The driver writes the lines it refused; a partition writes the events of the
        # customers it quarantined in its own part.
        arms = ["SELECT line, reason, raw, -1 AS part, id FROM main.rejects"]
        arms += [
            f"SELECT line, reason, raw, {k}, id FROM p{k}.rejects"
            for k in range(len(read_part_names(self._conn)))
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
            channels.setdefault(channel, {})[outcome] = n
        reasons: dict[str, int] = {
            reason: n
            for reason, n in conn.execute(
                "SELECT reason, count(*) FROM ledger WHERE outcome = 'suppressed'"
                " GROUP BY reason ORDER BY reason"
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
        return LedgerSummary(channels, reasons, int(row[0]) if row else 0, journeys)

    def message_ids(self, up_to_line: int | None = None) -> set[str]:
        if up_to_line is None:
            rows = self._conn.execute("SELECT message_id FROM events WHERE message_id IS NOT NULL")
        else:
            rows = self._conn.execute(
                "SELECT message_id FROM events WHERE message_id IS NOT NULL AND line <= ?",
                (up_to_line,),
            )
        return {row[0] for row in rows}

    def inbox(self, customer: str) -> list[InboxItem]:
        return [
            InboxItem(at, journey, step, subject, body, bool(read))
            for at, journey, step, subject, body, read in self._conn.execute(
                "SELECT at, journey, step, subject, body, read FROM inbox WHERE customer = ?"
                " ORDER BY at DESC",
                (customer,),
            )
        ]

    def instances(self, journeys: Sequence[str]) -> Iterator[InstanceRecord]:
        if not journeys:
            return
        marks = ", ".join("?" for _ in journeys)
        cursor = self._conn.execute(
            f"SELECT {', '.join(InstanceRecord._fields)} FROM journey_instances"
            f" WHERE journey IN ({marks})",
            tuple(journeys),
        )
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                yield InstanceRecord(*row)

    def customer_events(self, customer: str) -> list[EventRecord]:
        return [
            EventRecord(*row)
            for row in self._conn.execute(
                f"SELECT {', '.join(EventRecord._fields)} FROM events WHERE customer = ?"
                " ORDER BY id",
                (customer,),
            )
        ]

    def customer_ledger(self, customer: str) -> list[LedgerRecord]:
        return [
            LedgerRecord(*row)
            for row in self._conn.execute(
                f"SELECT {', '.join(LedgerRecord._fields)} FROM ledger WHERE customer = ?"
                " ORDER BY ts, seq",
                (customer,),
            )
        ]

    def message_customer(self, message_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT customer FROM ledger WHERE message_id = ? LIMIT 1", (message_id,)
        ).fetchone()
        return None if row is None else str(row[0])
