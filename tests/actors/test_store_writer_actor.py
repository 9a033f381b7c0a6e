"""The StoreWriterActor alone, on a real SQLite file, read back as a console reads it
(a read-only connection beside the writer).

What an operator would notice: a store that holds whole checkpoints only — nothing
before the commit, everything after, and nothing of a run that stopped in between.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import pytest
from actor_support import WAIT, table

from omniconsole.actors.messages import Checkpoint, Rows, StoreCall, Sync
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.records import (
    CapUsageRecord,
    EventRecord,
    HealthRecord,
    InboxRecord,
    InstanceRecord,
    LedgerRecord,
    OutboxRecord,
    ProfileRecord,
    RejectRecord,
    StoreRecord,
)

AT = "2026-03-02T10:00:00Z"


def ledger_row(seq: int) -> LedgerRecord:
    return LedgerRecord(AT, 1_772_445_600_000_000, "c-1", seq, f"m-{seq}", "onboarding",
                        "welcome", "email", "lifecycle", "sent", None, None, None,
                        "sent on email", "{}")  # fmt: skip


#: one record of each type, and the table the console reads it from
ONE_OF_EACH: list[tuple[StoreRecord, str]] = [
    (EventRecord(1, "c-1", AT, AT, "track", "Signed Up", "e-1", 0, "{}"), "events"),
    (RejectRecord(2, "missing userId", "{}"), "rejects"),
    (ledger_row(1), "ledger"),
    (ProfileRecord("c-1", "ana@example.com", None, AT, AT, "{}"), "profiles"),
    (InstanceRecord("c-1", "onboarding", 1, AT, "active", None, "nudge_day3", AT),
     "journey_instances"),
    (CapUsageRecord("m-1", "c-1", AT, "sms"), "cap_usage"),
    (InboxRecord("m-2", "c-1", AT, "onboarding", "welcome", "Welcome", "Hello"), "inbox"),
    (HealthRecord("sms", "up", "", AT), "adapter_health"),
    (OutboxRecord("m-3", "c-1", "sms", AT, "{}", "pending"), "outbox"),
]  # fmt: skip
TABLES = [name for _, name in ONE_OF_EACH]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def writer(db: Path) -> pykka.ActorRef[Any]:
    return StoreWriterActor.start(SqliteStore(db), fresh=True)


def count(db: Path, name: str) -> int:
    [(n,)] = table(db, f"SELECT count(*) FROM {name}")
    return int(n)


@pytest.mark.parametrize(("record", "name"), ONE_OF_EACH, ids=TABLES)
def test_rows_land_in_their_own_table_and_only_once_the_checkpoint_commits(
    writer: pykka.ActorRef[Any], db: Path, record: StoreRecord, name: str
) -> None:
    writer.tell(Rows([record]))
    writer.ask(Sync(), timeout=WAIT)
    assert {t: count(db, t) for t in TABLES} == dict.fromkeys(TABLES, 0)
    assert writer.ask(Checkpoint({}), timeout=WAIT) is True
    columns = ", ".join(record._fields)
    assert table(db, f"SELECT {columns} FROM {name}") == [tuple(record)]
    assert {t: count(db, t) for t in TABLES if t != name} == {t: 0 for t in TABLES if t != name}


def test_a_batch_too_big_to_hold_in_memory_is_still_invisible_until_the_commit(
    writer: pykka.ActorRef[Any], db: Path
) -> None:
    # beyond the writer's batch size the rows go to SQLite inside the open transaction
    writer.tell(Rows([ledger_row(seq) for seq in range(6000)]))
    writer.ask(Sync(), timeout=WAIT)
    assert count(db, "ledger") == 0
    writer.ask(Checkpoint({}), timeout=WAIT)
    assert count(db, "ledger") == 6000


def test_a_checkpoint_commits_its_meta_with_the_rows(writer: pykka.ActorRef[Any], db: Path) -> None:
    writer.tell(Rows([ledger_row(1)]))
    writer.ask(Checkpoint({"checkpoint_line": "7", "clock": AT}), timeout=WAIT)
    meta = dict(table(db, "SELECT key, value FROM meta"))
    assert (meta["checkpoint_line"], meta["clock"]) == ("7", AT)
    assert writer.ask(StoreCall(lambda store: store.meta()), timeout=WAIT) == meta


def test_stopping_rolls_back_everything_after_the_last_checkpoint(db: Path) -> None:
    writer = StoreWriterActor.start(SqliteStore(db), fresh=True)
    writer.tell(Rows([ledger_row(0)]))
    writer.ask(Checkpoint({"checkpoint_line": "1"}), timeout=WAIT)
    writer.tell(Rows([ledger_row(seq) for seq in range(1, 6001)]))  # partly in SQLite
    writer.tell(Rows([CapUsageRecord("m-1", "c-1", AT, "sms")]))  # still in memory
    writer.tell(Rows([]))  # nothing: no harm
    writer.ask(Sync(), timeout=WAIT)
    writer.stop()
    assert count(db, "ledger") == 1
    assert count(db, "cap_usage") == 0
    assert dict(table(db, "SELECT key, value FROM meta"))["checkpoint_line"] == "1"


def test_a_writer_resuming_keeps_the_store_and_a_fresh_one_empties_it(db: Path) -> None:
    first = StoreWriterActor.start(SqliteStore(db), fresh=True)
    first.tell(Rows([ledger_row(1)]))
    first.ask(Checkpoint({}), timeout=WAIT)
    first.stop()
    resumed = StoreWriterActor.start(SqliteStore(db), fresh=False)
    resumed.ask(Sync(), timeout=WAIT)
    assert count(db, "ledger") == 1
    resumed.stop()
    StoreWriterActor.start(SqliteStore(db), fresh=True).ask(Sync(), timeout=WAIT)
    assert count(db, "ledger") == 0


def test_a_store_call_runs_on_the_writers_own_loop_after_everything_sent_before_it(
    writer: pykka.ActorRef[Any],
) -> None:
    async def where(_: Any) -> tuple[int, asyncio.AbstractEventLoop]:
        return threading.get_ident(), asyncio.get_running_loop()

    thread, loop = writer.ask(StoreCall(where), timeout=WAIT)
    assert thread != threading.get_ident()
    assert writer.ask(StoreCall(where), timeout=WAIT) == (thread, loop)
    # told, not asked: the call still sees them, as it is handled after them
    writer.tell(Rows([CapUsageRecord("m-1", "c-1", AT, "sms")]))
    writer.tell(Checkpoint({}))
    day_before = datetime(2026, 3, 1, tzinfo=UTC)
    since = writer.ask(StoreCall(lambda store: store.cap_usage_since(day_before)), timeout=WAIT)
    assert since == [("c-1", AT, "sms")]


def test_a_failing_store_call_is_answered_with_its_error_and_the_writer_goes_on(
    writer: pykka.ActorRef[Any], db: Path
) -> None:
    async def broken(_: Any) -> None:
        raise LookupError("no such thing")

    with pytest.raises(LookupError, match="no such thing"):
        writer.ask(StoreCall(broken), timeout=WAIT)
    writer.tell(Rows([ledger_row(1)]))
    writer.ask(Checkpoint({}), timeout=WAIT)
    assert count(db, "ledger") == 1


def test_an_unknown_message_is_refused_with_a_type_error(writer: pykka.ActorRef[Any]) -> None:
    with pytest.raises(TypeError, match="unexpected message"):
        writer.ask(["not", "rows"], timeout=WAIT)
    assert writer.ask(Sync(), timeout=WAIT) is True
