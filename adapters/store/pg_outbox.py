"""`PostgresOutbox`: the live outbox in PostgreSQL, as the delivery runner sees it (an
`OutboxQueue`) — `sqlite_outbox.SqliteOutbox`'s counterpart, with the same answers.

Its own autocommit connection to the store's schema, beside the engine's writer: the
runner reads the sends that are due and commits each batch of outcomes here at once, in
one transaction, a few milliseconds after the provider answered — not at the engine's
next checkpoint — so a crash repeats only the sends that were on the wire. The rows are
written by the engine's checkpoints (`OutboxRecord`); this connection only updates
where they stand (and only rows not yet `settled`, as on SQLite).

The reads are the same two index range scans as SQLite's (`outbox_due_by_category`,
then `outbox_due`: transactional first, then the longest waiting), on the same partial
indexes (`pg_schema.postgres_outbox_migration`). PostgreSQL picks them from the
`status IN (...)` predicate the queries share with the indexes; there is no `INDEXED BY`.

What PostgreSQL adds: several nodes may hold a partition over time, so the outbox takes
part in the store's fence (`pg_schema.FENCE`). It remembers the writer epoch it opened
under; once another writer has opened the store (the partition was recreated elsewhere
while this one was cut off, not dead), `due` and `update` raise `StoreFenced` — the
replaced runner takes no more sends, and commits no outcome over its successor's.

Synchronous: call it from one thread (the runner's outbox thread).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.adapters.store.pg_schema import StoreFenced
from omniconsole.domain.records import (
    OUTBOX_FINAL,
    OUTBOX_RECONCILING,
    OUTBOX_ROW_COLUMNS,
    OUTBOX_WAITING,
    OutboxRow,
    OutboxUpdate,
)

_COLUMNS = OUTBOX_ROW_COLUMNS
# Literal lists, not parameters: PostgreSQL uses a partial index only when it can prove
# the query's predicate implies the index's, which it does for the same constant list.
_WAITING = ", ".join(f"'{s}'" for s in OUTBOX_WAITING)
_FINAL = ", ".join(f"'{s}'" for s in OUTBOX_FINAL)
#: times a batch of updates is tried when PostgreSQL aborts it to break a deadlock
_ATTEMPTS = 5


class PostgresOutbox:
    """Due sends and their outcomes, on a connection of its own. Use from one thread."""

    def __init__(self, location: PgLocation) -> None:
        self.location = location
        self._conn = location.connect(autocommit=True)
        try:
            self.epoch = self._epoch()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def _fail(self, action: str, exc: psycopg.Error) -> StoreError:
        location = self.location
        return StoreError(f"cannot {action} the outbox of {location.masked}: {location.scrub(exc)}")

    def _epoch(self) -> int:
        try:
            row = self._conn.execute("SELECT epoch FROM fence WHERE id = 1").fetchone()
        except psycopg.Error as exc:
            raise self._fail("open", exc) from None
        if row is None:
            raise StoreError(f"no store at {self.location.masked}: open its writer first")
        return int(row[0])

    def _check_fence(self, current: int) -> None:
        if current != self.epoch:
            raise StoreFenced(
                f"store {self.location.masked} was opened by another writer (epoch {current};"
                f" this outbox opened under {self.epoch}): no more sends from here"
            )

    def _select(self, query: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(query, args, prepare=True).fetchall()
        except psycopg.Error as exc:
            raise self._fail("read", exc) from None

    def due(self, channel: str, now: str, limit: int, exclude: Collection[str]) -> list[OutboxRow]:
        """Up to `limit` waiting sends of `channel` due at `now`, not in `exclude`;
        transactional first, then the longest waiting (raises `StoreFenced` once this
        store has another writer)."""
        self._check_fence(self._epoch())
        window = limit + len(exclude)
        rows = self._select(
            f"SELECT {_COLUMNS}, message_id FROM outbox"
            f" WHERE channel = %s AND category = 'transactional' AND status IN ({_WAITING})"
            " AND next_attempt_at <= %s ORDER BY next_attempt_at LIMIT %s",
            (channel, now, window),
        )
        found = [r for r in rows if r[-1] not in exclude][:limit]
        if len(found) < limit:
            rows = self._select(
                f"SELECT {_COLUMNS}, message_id FROM outbox"
                f" WHERE channel = %s AND status IN ({_WAITING}) AND next_attempt_at <= %s"
                " AND category != 'transactional' ORDER BY next_attempt_at LIMIT %s",
                (channel, now, window),
            )
            found += [r for r in rows if r[-1] not in exclude][: limit - len(found)]
        return [OutboxRow.from_columns(r) for r in found]

    def older_than(self, category: str, decided_before: str, limit: int) -> list[OutboxRow]:
        """Waiting sends of `category` decided before `decided_before` (to expire)."""
        rows = self._select(
            f"SELECT {_COLUMNS} FROM outbox WHERE status IN ({_WAITING})"
            " AND category = %s AND decided_at < %s ORDER BY decided_at LIMIT %s",
            (category, decided_before, limit),
        )
        return [OutboxRow.from_columns(r) for r in rows]

    def unsettled(self) -> list[OutboxRow]:
        """Final outcomes committed here whose ledger line never was (a crash between)."""
        rows = self._select(
            f"SELECT {_COLUMNS} FROM outbox WHERE settled = 0 AND status IN ({_FINAL})"
            " ORDER BY updated_at",
            (),
        )
        return [OutboxRow.from_columns(r) for r in rows]

    def update(self, updates: Sequence[OutboxUpdate]) -> None:
        """Commit these outcomes, in one transaction (unless the store has another
        writer now: `StoreFenced`, nothing committed)."""
        if not updates:
            return
        # In message id order: two transactions that lock rows in one order cannot
        # deadlock on them. The engine's checkpoint rewrites only settled rows, which
        # this never touches, so that is a safety net; a deadlock PostgreSQL breaks
        # anyway is retried (the updates set absolute values: a retry is the same).
        rows = [
            (u.status, u.attempts, u.next_attempt_at, u.last_error, u.provider_id,
             u.attempted_at, u.updated_at, u.result, u.message_id)
            for u in sorted(updates, key=lambda u: u.message_id)
        ]  # fmt: skip
        for attempt in range(_ATTEMPTS):
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    # a plain read, no lock: the engine's checkpoints lock the fence row
                    # as they commit, and outcomes must not queue behind them
                    cur.execute("SELECT epoch FROM fence WHERE id = 1")
                    fence = cur.fetchone()
                    self._check_fence(int(fence[0]) if fence else -1)
                    cur.executemany(
                        "UPDATE outbox SET status = %s, attempts = %s, next_attempt_at = %s,"
                        " last_error = %s, provider_id = %s, attempted_at = %s,"
                        " updated_at = %s, result = %s WHERE message_id = %s AND settled = 0",
                        rows,
                    )
                return
            except psycopg.errors.DeadlockDetected as exc:
                if attempt + 1 == _ATTEMPTS:
                    raise self._fail("commit to", exc) from None
            except psycopg.Error as exc:
                raise self._fail("commit to", exc) from None

    def hasten(self, message_id: str, now: str) -> bool:
        """A `reconciling` send the provider has reported on is due at `now`
        (`StoreFenced` once this store has another writer)."""
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute("SELECT epoch FROM fence WHERE id = 1")
                fence = cur.fetchone()
                self._check_fence(int(fence[0]) if fence else -1)
                cur.execute(
                    "UPDATE outbox SET next_attempt_at = %s WHERE message_id = %s"
                    f" AND status = '{OUTBOX_RECONCILING}' AND settled = 0"
                    " AND next_attempt_at > %s",
                    (now, message_id, now),
                )
                return cur.rowcount > 0
        except psycopg.Error as exc:
            raise self._fail("commit to", exc) from None

    def backlog(self) -> dict[str, dict[str, Any]]:
        """Per channel: how many sends wait in each state, and the oldest decision."""
        out: dict[str, dict[str, Any]] = {}
        for channel, status, count, oldest in self._select(
            f"SELECT channel, status, count(*), min(decided_at) FROM outbox"
            f" WHERE status IN ({_WAITING}) GROUP BY channel, status",
            (),
        ):
            entry = out.setdefault(str(channel), {s: 0 for s in OUTBOX_WAITING})
            entry[str(status)] = int(count)
            if entry.get("oldest") is None or str(oldest) < str(entry["oldest"]):
                entry["oldest"] = str(oldest)
        return out
