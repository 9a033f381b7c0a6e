"""The PostgreSQL outbox gives the delivery runner the same answers as the SQLite one.

The runner's guarantees rest on what its `OutboxQueue` answers: which sends are due
(transactional first, then the longest waiting, none it already has in flight), which
are too old, which final outcomes were never settled, how large the backlog is — and
that an outcome never overwrites a row the engine has settled. Hypothesis writes the same
outbox rows into both stores, runs the same reads and updates on both, and compares.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.adapters.store.base import OutboxQueue, Store
from omniconsole.adapters.store.postgres import PostgresStore
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.records import (
    OUTBOX_FINAL,
    OUTBOX_WAITING,
    OutboxEntry,
    OutboxRecord,
    OutboxUpdate,
)

pytestmark = pytest.mark.postgres

CHANNELS = ("email", "sms")
CATEGORIES = ("transactional", "lifecycle", "promotional")
STATUSES = OUTBOX_WAITING + OUTBOX_FINAL
_schemas = itertools.count()


def stamp(minute: int) -> str:
    """A distinct time per minute (the outbox orders by these: no ties)."""
    return f"2026-03-02T{9 + minute // 60:02d}:{minute % 60:02d}:00.000000Z"


def record(k: int, channel: str, category: str, status: str, settled: int,
           due: int, decided: int) -> OutboxRecord:  # fmt: skip
    mid = f"m-{k:02d}"
    entry = OutboxEntry(
        line={"message_id": mid, "customer": f"c-{k}", "channel": channel,
              "at": stamp(decided), "journey": "j", "step": "s"},
        ts=k, seq=0, capped=False, explanation="", category=category,
        recipient={"customer": f"c-{k}"}, subject="", text="hello", html=None, handoff=None,
    )  # fmt: skip
    return OutboxRecord(mid, f"c-{k}", channel, stamp(decided), entry.to_json().decode(),
                        status, category, attempts=0, next_attempt_at=stamp(due),
                        updated_at=stamp(due), settled=settled)  # fmt: skip


@st.composite
def outboxes(draw: st.DrawFn) -> list[OutboxRecord]:
    n = draw(st.integers(0, 12))
    dues = draw(st.permutations(range(40)))[:n]
    decideds = draw(st.permutations(range(40)))[:n]
    return [
        record(
            k,
            draw(st.sampled_from(CHANNELS)),
            draw(st.sampled_from(CATEGORIES)),
            draw(st.sampled_from(STATUSES)),
            draw(st.sampled_from((0, 1))),
            dues[k],
            decideds[k],
        )
        for k in range(n)
    ]


ids = st.lists(st.sampled_from([f"m-{k:02d}" for k in range(12)]), max_size=4, unique=True)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("due"), st.sampled_from(CHANNELS), st.integers(0, 45), st.integers(1, 5), ids
        ),
        st.tuples(
            st.just("older"), st.sampled_from(CATEGORIES), st.integers(0, 45), st.integers(1, 5)
        ),
        st.tuples(st.just("unsettled")),
        st.tuples(st.just("backlog")),
        st.tuples(st.just("update"), ids, st.sampled_from(STATUSES)),
    ),
    max_size=8,
)


def fill(store: Store, rows: list[OutboxRecord]) -> None:
    async def go() -> None:
        writer = store.writer()
        await writer.open(fresh=True)
        try:
            await writer.add(rows)
            await writer.checkpoint({"status": "running"})
        finally:
            await writer.close()

    asyncio.run(go())


def run(outbox: OutboxQueue, op: tuple[Any, ...], tick: int) -> Any:
    kind = op[0]
    if kind == "due":
        _, channel, now, limit, exclude = op
        return outbox.due(channel, stamp(now), limit, set(exclude))
    if kind == "older":
        _, category, cutoff, limit = op
        return outbox.older_than(category, stamp(cutoff), limit)
    if kind == "unsettled":
        return outbox.unsettled()
    if kind == "backlog":
        return outbox.backlog()
    _, targets, status = op
    # each row updated its own times (past the rows' own): orders stay without ties
    outbox.update([
        OutboxUpdate(mid, status, 1, stamp(at), f"e{tick}", f"p-{mid}", stamp(at), stamp(at), "")
        for at, mid in enumerate(targets, start=100 + 10 * tick)
    ])  # fmt: skip
    return outbox.unsettled(), outbox.backlog()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=outboxes(), ops=operations)
def test_the_postgresql_outbox_answers_the_runner_as_the_sqlite_one_does(
    pg_url: str, rows: list[OutboxRecord], ops: list[tuple[Any, ...]]
) -> None:
    on_pg = PostgresStore.from_url(pg_url)
    on_pg = PostgresStore(on_pg.location.at(f"outbox_{next(_schemas)}"))
    with tempfile.TemporaryDirectory() as folder:
        on_sqlite = SqliteStore(Path(folder) / "store.db")
        fill(on_pg, rows)
        fill(on_sqlite, rows)
        pg, lite = on_pg.outbox(), on_sqlite.outbox()
        try:
            for tick, op in enumerate(ops):
                assert run(pg, op, tick) == run(lite, op, tick), op
        finally:
            pg.close()
            lite.close()


def test_an_outcome_never_overwrites_a_row_the_engine_settled(pg_url: str) -> None:
    store = PostgresStore.from_url(pg_url)
    settled = record(1, "email", "lifecycle", "sent", 1, 0, 0)
    fill(store, [settled, record(2, "email", "lifecycle", "pending", 0, 1, 1)])
    outbox = store.outbox()
    try:
        late = [OutboxUpdate(m, "failed", 9, "", "late", None, "", stamp(50), "")
                for m in ("m-01", "m-02")]  # fmt: skip
        outbox.update(late)
        assert [(r.entry.message_id, r.status) for r in outbox.unsettled()] == [("m-02", "failed")]
        assert outbox.backlog() == {}
    finally:
        outbox.close()
