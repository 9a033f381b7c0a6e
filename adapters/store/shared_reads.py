"""Reads whose SQL is the same on SQLite and PostgreSQL but for the parameter marker:
written once here, mixed into `SqliteReader` and `PostgresReader`."""

from __future__ import annotations

from typing import Any, ClassVar

from omniconsole.adapters.store.base import LedgerTail, Quarantined
from omniconsole.domain.records import OUTBOX_WAITING, OutboxEntry

_WAITING = ", ".join(f"'{s}'" for s in OUTBOX_WAITING)


class SharedReads:
    """The `StoreReader` methods both stores answer with the same SQL."""

    #: the driver's parameter marker: `?` (sqlite3) or `%s` (psycopg)
    PARAM: ClassVar[str]
    _conn: Any  # a sqlite3 or psycopg connection: both take execute(sql, params)

    def customers_for_phone(self, phone: str) -> list[str]:
        """Every customer whose profile holds this phone number, latest first."""
        return [
            str(r[0])
            for r in self._conn.execute(
                "SELECT customer FROM profiles WHERE phone = "
                f"{self.PARAM} ORDER BY updated_at DESC, customer",
                (phone,),
            )
        ]

    def has_message_id(self, message_id: str, before_line: int | None = None) -> bool:
        """Whether an applied event (of a log line before `before_line`) has this id.
        Asked rarely (a digest hit the driver's own memory cannot settle): no index,
        so the events table is scanned."""
        if before_line is None:
            sql, args = f"message_id = {self.PARAM}", (message_id,)
        else:
            sql = f"message_id = {self.PARAM} AND line < {self.PARAM}"
            args = (message_id, before_line)  # type: ignore[assignment]
        row = self._conn.execute(f"SELECT 1 FROM events WHERE {sql} LIMIT 1", args).fetchone()
        return row is not None

    def pending_outbox(self) -> list[OutboxEntry]:
        """Sends still waiting in the outbox, oldest decision first."""
        rows = self._conn.execute(
            f"SELECT payload FROM outbox WHERE status IN ({_WAITING}) ORDER BY decided_at"
        ).fetchall()
        return [OutboxEntry.from_json(r[0]) for r in rows]

    def ledger_since(self, last_id: int) -> list[LedgerTail]:
        """Ledger rows after `last_id`, in id order."""
        return [
            LedgerTail(int(r[0]), r[1], str(r[2]), r[3])
            for r in self._conn.execute(
                "SELECT id, channel, outcome, reason FROM ledger WHERE id > "
                f"{self.PARAM} ORDER BY id",
                (last_id,),
            ).fetchall()
        ]

    def quarantined(self) -> dict[str, Quarantined]:
        """Quarantined customers: customer -> since and reason, oldest first."""
        return {
            str(c): Quarantined(str(since), str(reason))
            for c, since, reason in self._conn.execute(
                "SELECT customer, since, reason FROM quarantine ORDER BY since, customer"
            )
        }

    def decision_count(self) -> int:
        """Decisions recorded, from the console's counters."""
        row = self._conn.execute("SELECT COALESCE(SUM(total), 0) FROM counters").fetchone()
        return int(row[0]) if row else 0
