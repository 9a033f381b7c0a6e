"""`SqliteOutbox`: the live outbox as the delivery runner sees it (an `OutboxQueue`).

Its own connection to the store, beside the engine's writer (WAL lets both write, one
transaction at a time). The runner reads the sends that are due and commits each
attempt's outcome here at once — a few milliseconds after the provider answered, not at
the engine's next checkpoint — so a crash repeats only the sends that were on the wire.
The rows themselves are written by the engine's checkpoints (`OutboxRecord`); this
connection only updates where they stand.

Synchronous: call it from one thread (the runner's outbox thread).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from omniconsole.domain.records import (
    OUTBOX_FINAL,
    OUTBOX_RECONCILING,
    OUTBOX_ROW_COLUMNS,
    OUTBOX_WAITING,
    OutboxRow,
    OutboxUpdate,
)

_COLUMNS = OUTBOX_ROW_COLUMNS
_WAITING = ", ".join(f"'{s}'" for s in OUTBOX_WAITING)
_FINAL = ", ".join(f"'{s}'" for s in OUTBOX_FINAL)


class SqliteOutbox:
    """Due sends and their outcomes, on a connection of its own. Use from one thread."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The engine's writer may hold the write lock for a checkpoint: wait for it.
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")

    def close(self) -> None:
        self._conn.close()

    def due(self, channel: str, now: str, limit: int, exclude: Collection[str]) -> list[OutboxRow]:
        """Up to `limit` waiting sends of `channel` due at `now`, not in `exclude`;
        transactional first, then the longest waiting.

        Two index range scans rather than one sort: after a long outage every row of a
        large backlog is due, and this runs each time a send completes.
        """
        window = limit + len(exclude)
        rows = self._conn.execute(
            f"SELECT {_COLUMNS}, message_id FROM outbox INDEXED BY outbox_due_by_category"
            f" WHERE channel = ? AND category = 'transactional' AND status IN ({_WAITING})"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (channel, now, window),
        ).fetchall()
        found = [r for r in rows if r[-1] not in exclude][:limit]
        if len(found) < limit:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS}, message_id FROM outbox INDEXED BY outbox_due"
                f" WHERE channel = ? AND status IN ({_WAITING}) AND next_attempt_at <= ?"
                " AND category != 'transactional' ORDER BY next_attempt_at LIMIT ?",
                (channel, now, window),
            ).fetchall()
            found += [r for r in rows if r[-1] not in exclude][: limit - len(found)]
        return [OutboxRow.from_columns(r) for r in found]

    def older_than(self, category: str, decided_before: str, limit: int) -> list[OutboxRow]:
        """Waiting sends of `category` decided before `decided_before` (to expire)."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE status IN ({_WAITING})"
            " AND category = ? AND decided_at < ? ORDER BY decided_at LIMIT ?",
            (category, decided_before, limit),
        ).fetchall()
        return [OutboxRow.from_columns(r) for r in rows]

    def unsettled(self) -> list[OutboxRow]:
        """Final outcomes committed here whose ledger line never was (a crash between)."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE settled = 0 AND status IN ({_FINAL})"
            " ORDER BY updated_at"
        ).fetchall()
        return [OutboxRow.from_columns(r) for r in rows]

    def update(self, updates: Sequence[OutboxUpdate]) -> None:
        """Commit these outcomes, in one transaction."""
        if not updates:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
                " last_error = ?, provider_id = ?, attempted_at = ?, updated_at = ?,"
                " result = ? WHERE message_id = ? AND settled = 0",
                [
                    (u.status, u.attempts, u.next_attempt_at, u.last_error, u.provider_id,
                     u.attempted_at, u.updated_at, u.result, u.message_id)
                    for u in updates
                ],
            )  # fmt: skip
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def hasten(self, message_id: str, now: str) -> bool:
        """A `reconciling` send the provider has reported on is due at `now`."""
        cur = self._conn.execute(  # autocommit: one statement, its own transaction
            "UPDATE outbox SET next_attempt_at = ? WHERE message_id = ?"
            f" AND status = '{OUTBOX_RECONCILING}' AND settled = 0 AND next_attempt_at > ?",
            (now, message_id, now),
        )
        return cur.rowcount > 0

    def backlog(self) -> dict[str, dict[str, Any]]:
        """Per channel: how many sends wait in each state, and the oldest decision."""
        out: dict[str, dict[str, Any]] = {}
        for channel, status, count, oldest in self._conn.execute(
            f"SELECT channel, status, count(*), min(decided_at) FROM outbox"
            f" WHERE status IN ({_WAITING}) GROUP BY channel, status"
        ):
            entry = out.setdefault(str(channel), {s: 0 for s in OUTBOX_WAITING})
            entry[str(status)] = int(count)
            if entry.get("oldest") is None or str(oldest) < str(entry["oldest"]):
                entry["oldest"] = str(oldest)
        return out
