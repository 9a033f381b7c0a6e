"""The PostgreSQL store alone: whole checkpoints, SQLite's conflict rules, the fence
that keeps a replaced writer from committing, NUL-safe text, and no password shown.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import psycopg
import pytest
from pg_fixtures import socket_dir
from store_logs import replay

from omniconsole.adapters.store import StoreError, store_at
from omniconsole.adapters.store.postgres import BATCH_ROWS, PostgresStore, StoreFenced
from omniconsole.cli import main
from omniconsole.domain.records import CapUsageRecord, LedgerRecord, OutboxRecord, StoreRecord

pytestmark = pytest.mark.postgres

AT = "2026-03-02T10:00:00Z"


def decision(seq: int, customer: str = "c-1") -> LedgerRecord:
    return LedgerRecord(AT, 1_772_445_600_000_000, customer, seq, f"m-{customer}-{seq}",
                        "onboarding", "welcome", "email", "lifecycle", "sent", None, None,
                        None, "sent on email", "{}")  # fmt: skip


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query))


def write(url: str, *batches: list[StoreRecord], meta: dict[str, str] | None = None) -> None:
    """Open a writer, add each batch, commit one checkpoint."""

    async def go() -> None:
        writer = PostgresStore.from_url(url).writer()
        await writer.open(fresh=False)
        try:
            for batch in batches:
                await writer.add(batch)
            await writer.checkpoint(meta or {"status": "running"})
        finally:
            await writer.close()

    asyncio.run(go())


def test_a_reader_sees_nothing_of_a_checkpoint_until_it_commits(pg_url: str) -> None:
    """More rows than one batch reach the server before the commit, yet a reader sees
    none of them until the checkpoint, then all of them."""

    async def go() -> None:
        writer = PostgresStore.from_url(pg_url).writer()
        await writer.open(fresh=True)
        await writer.add([decision(k) for k in range(BATCH_ROWS + 10)])
        assert rows(pg_url, "SELECT count(*) FROM omniconsole.ledger") == [(0,)]
        await writer.checkpoint({"checkpoint_line": "7"})
        assert rows(pg_url, "SELECT count(*) FROM omniconsole.ledger") == [(BATCH_ROWS + 10,)]
        await writer.add([decision(BATCH_ROWS + 20)])
        await writer.close()  # uncommitted: rolled back

    asyncio.run(go())
    assert rows(pg_url, "SELECT count(*) FROM omniconsole.ledger") == [(BATCH_ROWS + 10,)]
    with contextlib.closing(store_at(pg_url).reader()) as reader:
        assert reader.meta()["checkpoint_line"] == "7"


def test_conflicting_rows_resolve_as_on_sqlite(pg_url: str) -> None:
    """An outbox row updated within one batch keeps its last state; a cap usage row
    written twice keeps its first."""
    pending = OutboxRecord("m-1", "c-1", "sms", AT, "{}", "pending")
    write(pg_url, [pending, pending._replace(status="sent")],
          [CapUsageRecord("m-1", "c-1", AT, "sms"), CapUsageRecord("m-1", "c-2", AT, "email")])  # fmt: skip
    write(pg_url, [pending._replace(status="failed")])
    assert rows(pg_url, "SELECT message_id, status FROM omniconsole.outbox") == [("m-1", "failed")]
    assert rows(pg_url, "SELECT customer, channel FROM omniconsole.cap_usage") == [("c-1", "sms")]


def test_a_writer_that_was_replaced_can_no_longer_commit(pg_url: str) -> None:
    """A partition recreated elsewhere while the old one still runs (cut off, not dead):
    opening the new writer fences the old one off — its checkpoint fails, and nothing it
    wrote is seen."""
    store = PostgresStore.from_url(pg_url)

    async def go() -> None:
        old = store.writer()
        await old.open(fresh=True)
        await old.checkpoint({"checkpoint_line": "1"})
        new = store.writer()
        await new.open(fresh=False)
        await old.add([decision(1, "zombie")])
        with pytest.raises(StoreFenced, match="opened by another writer"):
            await old.checkpoint({"checkpoint_line": "99"})
        await old.close()
        await new.add([decision(1, "heir")])
        await new.checkpoint({"checkpoint_line": "2"})
        await new.close()

    asyncio.run(go())
    assert rows(pg_url, "SELECT customer FROM omniconsole.ledger") == [("heir",)]
    assert rows(pg_url, "SELECT value FROM omniconsole.meta WHERE key = 'checkpoint_line'") == [
        ("2",)
    ]


def test_text_with_nul_characters_is_stored_and_the_replay_goes_on(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL text cannot hold NUL: a rejected line carrying a NUL byte is stored
    with U+FFFD instead; a trait sent as \\u0000 is refused at the door, as on SQLite;
    the decisions are SQLite's."""
    log = tmp_path / "nul.jsonl"
    log.write_bytes(
        b'{"type":"identify","userId":"c-nul","timestamp":"2026-03-02T00:00:00Z",'
        b'"traits":{"email":"a\\u0000b@example.com"},"messageId":"n-1"}\n'
        b'{"type":"track","userId":"c-nul","event":"Signed Up",'
        b'"timestamp":"2026-03-02T00:00:01Z","messageId":"n-2"}\n'
        b'{"type":"tr\x00ck"}\n'
    )
    on_sqlite = replay(log, tmp_path / "sqlite")
    assert replay(log, tmp_path / "pg", pg_url) == on_sqlite
    assert (tmp_path / "pg" / "ledger.jsonl").read_bytes() == (
        tmp_path / "sqlite" / "ledger.jsonl"
    ).read_bytes()
    assert rows(pg_url, "SELECT email FROM omniconsole.profiles") == [(None,)]
    assert rows(pg_url, "SELECT line, reason FROM omniconsole.rejects ORDER BY line")[0] == (
        1,
        "field 'traits.email' contains a NUL character",
    )
    (raw,) = rows(pg_url, "SELECT raw FROM omniconsole.rejects WHERE line = 3")[0]
    assert raw == '{"type":"tr\ufffdck"}'


def test_messages_about_a_store_never_show_its_password(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cret-Pa55"
    sock = socket_dir(pg_url)
    url = f"postgresql://postgres:{secret}@/no_such_db?host={sock}"
    store = store_at(url)
    assert secret not in store.describe() and "***" in store.describe()
    with pytest.raises(StoreError) as failure:
        store.reader()
    assert "no_such_db" in str(failure.value) and secret not in str(failure.value)
    as_param = store_at(f"postgresql:///no_such_db?host={sock}&password={secret}")
    assert secret not in as_param.describe()
    assert main(["inbox", "c-1", "--db", url]) == 2
    shown = capsys.readouterr()
    assert "no_such_db" in shown.err and secret not in shown.err + shown.out


def test_a_bad_schema_name_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inbox", "c-1", "--db", "postgresql:///x?schema=Robert');DROP"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema=" in err
