"""Live: a send decided and committed, but with no result when the process died, goes out
on restart — once, under its original message id — and nothing is decided twice."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from omniconsole.adapters.channels.fake import FakeChannelAdapter
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.messages import DeliveryResult, OutboundMessage
from omniconsole.engine.live import LiveEngine

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class StuckAdapter(FakeChannelAdapter):
    """A provider call that never answers: the process dies while it is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class RecordingAdapter(FakeChannelAdapter):
    """Delivers, and signals each delivery."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = threading.Event()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        result = await super().send(message)
        self.delivered.set()
        return result


class FixedClock:
    def now(self) -> datetime:
        return NOW


def engine(db: Path, adapter: FakeChannelAdapter) -> LiveEngine:
    return LiveEngine(
        load_config(shipped_config_dir()),
        SqliteStore(db),
        {Channel.EMAIL: adapter},
        None,
        Metrics(),
        clock=FixedClock(),
        tick=0.05,
        poll=0.05,
    )


def ledger(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [orjson.loads(r[0]) for r in conn.execute("SELECT line FROM ledger ORDER BY id")]
    finally:
        conn.close()


def outbox(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT message_id, status FROM outbox")]
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_a_send_in_flight_at_a_crash_is_sent_once_on_restart(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    events = [
        Event("identify", "c-1", NOW, traits={"email": "ana@example.com"}, message_id="e-1"),
        Event("track", "c-1", NOW, "Signed Up", message_id="e-2"),
    ]

    stuck = StuckAdapter()
    first = engine(db, stuck)
    await asyncio.to_thread(first.start)
    result = await first.accept(events)  # durable: decision and outbox row committed
    assert result.accepted == 2
    assert await asyncio.to_thread(stuck.entered.wait, 10), "the welcome email was never sent"
    await asyncio.to_thread(first.stop, 0.0)  # the process "dies" with the send in flight
    [(message_id, status)] = outbox(db)
    assert status == "pending"
    assert [line["outcome"] for line in ledger(db)] == []  # no result was recorded

    working = RecordingAdapter()
    second = engine(db, working)
    await asyncio.to_thread(second.start)
    assert await asyncio.to_thread(working.delivered.wait, 10), "the pending send was lost"
    duplicate = await second.accept(events)  # the client retries: nothing is applied twice
    assert (duplicate.accepted, duplicate.duplicates) == (0, 2)
    await asyncio.to_thread(second.stop)

    assert [m.message_id for m in working.sent] == [message_id]
    lines = ledger(db)
    assert [(x["step"], x["channel"], x["outcome"]) for x in lines] == [
        ("welcome", "email", "sent")
    ]
    assert lines[0]["message_id"] == message_id
    assert outbox(db) == [(message_id, "sent")]
