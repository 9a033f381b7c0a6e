"""The SQLite store's durability knobs and its outbox across versions.

`OMNICONSOLE_SQLITE_SYNCHRONOUS=FULL` makes every writing connection fsync at commit
(an acknowledged event survives power loss); the default NORMAL survives a crash of the
process. A store written before the outbox kept delivery state is brought up to date in
place: its sent rows stay settled, its pending ones wait to be sent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.schema import SCHEMA_VERSION
from omniconsole.adapters.store.sqlite import SqliteStore

#: PRAGMA synchronous answers a number
LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


def writer_level(store: SqliteStore) -> int:
    async def level() -> int:
        writer = store.writer()
        await writer.open(fresh=False)
        try:
            async with writer.db.execute("PRAGMA synchronous") as cur:
                row = await cur.fetchone()
                assert row is not None
                return int(row[0])
        finally:
            await writer.close()

    return asyncio.run(level())


@pytest.mark.parametrize("level", ["", "normal", "FULL", "extra"])
def test_synchronous_is_normal_unless_the_environment_asks_for_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setenv("OMNICONSOLE_SQLITE_SYNCHRONOUS", level)
    store = SqliteStore(tmp_path / "s.db")
    expected = LEVELS[level.upper() or "NORMAL"]
    assert writer_level(store) == expected
    outbox = store.outbox()
    try:
        assert outbox._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    finally:
        outbox.close()


def test_an_unknown_synchronous_level_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OMNICONSOLE_SQLITE_SYNCHRONOUS", "OFF")  # never: it can corrupt
    with pytest.raises(StoreError, match="OMNICONSOLE_SQLITE_SYNCHRONOUS"):
        SqliteStore(tmp_path / "s.db")


def test_a_version_1_outbox_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE outbox (message_id TEXT PRIMARY KEY, customer TEXT NOT NULL,"
        " channel TEXT NOT NULL, decided_at TEXT NOT NULL, payload TEXT NOT NULL,"
        " status TEXT NOT NULL);"
        "INSERT INTO outbox VALUES ('m-1', 'c-1', 'email', '2026-03-02T09:00:00Z',"
        " '{\"category\": \"transactional\"}', 'sent');"
        "INSERT INTO outbox VALUES ('m-2', 'c-1', 'sms', '2026-03-02T09:00:01Z',"
        " '{\"category\": \"lifecycle\"}', 'pending');"
    )
    conn.close()
    writer_level(SqliteStore(db))  # opening the writer migrates
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT message_id, status, category, settled, next_attempt_at FROM outbox"
            " ORDER BY message_id"
        ).fetchall()
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        conn.close()
    assert rows == [("m-1", "sent", "transactional", 1, ""), ("m-2", "pending", "lifecycle", 0, "")]
    assert version == (str(SCHEMA_VERSION),)
