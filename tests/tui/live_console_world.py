"""A store that a live engine writes while the console watches: adapter health, outbox.

`LiveWorld` runs `omniconsole.engine.live.LiveEngine` (the engine behind `serve`) with
in-memory fake channel adapters: email works, push fails until its circuit opens, the
Twilio channels are not configured. Events go in through `accept`, as the HTTP front
hands them in; the engine commits them before `accept` returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from omniconsole.adapters.channels.fake import FakeChannelAdapter, transient
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestResult
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.events import Event, event_from_dict
from omniconsole.engine.live import LiveEngine

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


class StepClock:
    """A live clock the test moves by hand (microseconds after each event, like serve)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@dataclass
class LiveWorld:
    """A running live engine over `db`."""

    db: Path
    engine: LiveEngine
    clock: StepClock
    email: FakeChannelAdapter = field(default_factory=FakeChannelAdapter)

    async def accept(self, *events: dict[str, object]) -> IngestResult:
        """Hand Segment-shaped events to the engine; returns once they are committed."""
        return await self.engine.accept([_event(e) for e in events])

    async def stop(self) -> None:
        await asyncio.to_thread(self.engine.stop, 0.0)


def _event(raw: dict[str, object]) -> Event:
    return event_from_dict(dict(raw))


async def start_live(db: Path, clock: StepClock | None = None) -> LiveWorld:
    """Start a live engine on `db` with fake adapters for email and push."""
    clock = clock or StepClock()
    email = FakeChannelAdapter()
    push = FakeChannelAdapter(failure_threshold=1)
    push.script(transient(10))  # the provider is down: the breaker opens
    engine = LiveEngine(
        load_config(shipped_config_dir()),
        SqliteStore(db),
        {Channel.EMAIL: email, Channel.PUSH: push},
        None,
        Metrics(),
        not_configured={c: "missing TWILIO_ACCOUNT_SID" for c in (Channel.SMS, Channel.WHATSAPP,
                                                                     Channel.RCS)},
        clock=clock,
        tick=0.05,
        poll=0.05,
    )  # fmt: skip
    await asyncio.to_thread(engine.start)
    return LiveWorld(db, engine, clock, email)
