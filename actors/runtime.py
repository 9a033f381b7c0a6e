"""EngineRuntime: starts, drives and stops the actor system.

    profile shards ──SendRequest──▶ governor ──Dispatch──▶ channel dispatchers
          ▲                            │                         │
          └──────── Decided ───────────┘                         ▼
                     every actor ──Rows──▶ store writer ──▶ SQLite

The runtime's caller (a replay or the live service) is not an actor, so it may wait on
futures: it waits for batches to finish and for checkpoints to commit.
"""

from __future__ import annotations

import asyncio
import queue
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pykka

from omniconsole.actors.dispatcher import ChannelDispatcherActor, Committed, DeliveryFailure
from omniconsole.actors.governor import FatigueGovernorActor
from omniconsole.actors.messages import (
    ApplyBatch,
    Checkpoint,
    FlushState,
    LoadUsage,
    NextDue,
    Passivate,
    PreloadTimers,
    Rows,
    StoreCall,
    Sync,
    UseGovernor,
)
from omniconsole.actors.profile_shard import ProfileShardActor
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.templates import TemplateSet
from omniconsole.domain.timeutil import parse_timestamp

#: messages waiting for the store writer before the driver waits for it to catch up
WRITER_BACKLOG = 32


class ActorFailure(RuntimeError):
    """An actor of the runtime stopped unexpectedly; the message says which."""


@dataclass(frozen=True)
class LiveWiring:
    """What a live runtime needs beyond a replay's: real adapters and where they run."""

    adapters: Mapping[Channel, ChannelAdapter]
    templates: TemplateSet | None
    loop: asyncio.AbstractEventLoop
    on_failure: Callable[[DeliveryFailure], None]
    on_result: Callable[[str, str, float], None] | None = None


class EngineRuntime:
    """The running actor system for one store."""

    def __init__(
        self,
        config: EngineConfig,
        db: Path,
        *,
        fresh: bool,
        shards: int = 2,
        store_backed: bool = False,
        live: LiveWiring | None = None,
        gil_free_inserts: bool = True,
    ) -> None:
        self.config = config
        self.live = live
        self.writer = StoreWriterActor.start(db, fresh=fresh, gil_free_inserts=gil_free_inserts)
        self.dispatchers: dict[Channel, pykka.ActorRef[Any]] = {}
        for ch in Channel:
            if live is None:
                self.dispatchers[ch] = ChannelDispatcherActor.start(ch, self.writer)
            else:
                self.dispatchers[ch] = ChannelDispatcherActor.start(
                    ch,
                    self.writer,
                    adapter=live.adapters.get(ch),
                    templates=live.templates,
                    loop=live.loop,
                    report_failure=live.on_failure,
                    on_result=live.on_result,
                )
        self.governor = FatigueGovernorActor.start(config.policy, self.dispatchers, self.writer)
        for dispatcher in self.dispatchers.values():
            dispatcher.tell(UseGovernor(self.governor))  # failed capped sends are released there
        available = None
        if live is not None:
            available = frozenset(live.adapters) | frozenset({Channel.IN_APP})
        self.shards = [
            ProfileShardActor.start(
                config,
                self.governor,
                self.writer,
                db,
                store_backed=store_backed,
                live=live is not None,
                available=available,
            )
            for _ in range(shards)
        ]
        self._in_flight: list[Future[int]] = []
        self._batch = 0

    def all_refs(self) -> list[pykka.ActorRef[Any]]:
        return [*self.shards, self.governor, *self.dispatchers.values(), self.writer]

    def shard_of(self, customer: str) -> int:
        """Stable shard index of a customer (crc32: the same in every process)."""
        return zlib.crc32(customer.encode()) % len(self.shards)

    def apply(
        self, events: Sequence[TimedEvent], horizon: datetime | None, window: int = 2
    ) -> None:
        """Give every shard its part of `events`; at most `window` batches in flight."""
        parts: list[list[TimedEvent]] = [[] for _ in self.shards]
        if len(self.shards) == 1:
            parts[0] = list(events)
        else:
            for timed in events:
                parts[self.shard_of(timed.event.customer)].append(timed)
        self._batch += 1
        for shard, part in zip(self.shards, parts, strict=True):
            done: Future[int] = Future()
            shard.tell(ApplyBatch(self._batch, part, horizon, done))
            self._in_flight.append(done)
        # Backpressure: rows wait in the writer's mailbox until SQLite takes them; never
        # let the producers run far ahead of it, or memory grows with the backlog.
        if cast("queue.Queue[Any]", self.writer.actor_inbox).qsize() > WRITER_BACKLOG:
            self.writer.ask(Sync())
        limit = window * len(self.shards)
        if len(self._in_flight) > limit:
            self._wait(self._in_flight[: len(self._in_flight) - limit])
            self._in_flight = self._in_flight[len(self._in_flight) - limit :]

    def drain(self) -> None:
        """Wait until every batch given so far is fully applied."""
        self._wait(self._in_flight)
        self._in_flight = []

    def _wait(self, futures: Sequence[Future[int]]) -> None:
        pending = list(futures)
        while pending:
            done, not_done = wait_futures(pending, timeout=1.0)
            for future in done:
                future.result()  # re-raises a shard's failure here
            pending = list(not_done)
            if pending:
                dead = [ref for ref in self.all_refs() if not ref.is_alive()]
                if dead:
                    raise ActorFailure(
                        "actor stopped unexpectedly: " + ", ".join(str(r) for r in dead)
                    )

    def next_due(self) -> datetime | None:
        """The earliest pending timer on any shard (may be stale: then a no-op to fire)."""
        dues: list[datetime] = []
        for shard in self.shards:
            due = shard.ask(NextDue())
            if isinstance(due, datetime):
                dues.append(due)
        return min(dues) if dues else None

    def write(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows written by the caller (events, rejects) in the current checkpoint."""
        if rows:
            self.writer.tell(Rows(table, rows))

    def checkpoint(self, meta: dict[str, str], now: datetime, *, max_active: int) -> None:
        """Commit a consistent cut: everything applied so far, profiles and `meta`."""
        self.drain()
        for shard in self.shards:
            shard.ask(FlushState(now))
        self.governor.ask(Sync())
        for dispatcher in self.dispatchers.values():
            dispatcher.ask(Sync())
        self.writer.ask(Checkpoint(meta))
        if self.live is not None:
            for dispatcher in self.dispatchers.values():
                dispatcher.tell(Committed())
        self.governor.tell(now)
        for shard in self.shards:
            shard.tell(Passivate(max_active // len(self.shards)))

    def store(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(store)` on the writer (ordered after every row sent before)."""
        return self.writer.ask(StoreCall(fn))

    def restore(self, usage_since: datetime | None) -> None:
        """After a restart: each shard's pending timers, and the governor's cap usage
        counted since `usage_since`."""
        parts: list[list[tuple[str, datetime]]] = [[] for _ in self.shards]
        for customer, due in self.store(lambda s: s.timer_heads()):
            parts[self.shard_of(customer)].append((customer, parse_timestamp(due)))
        for shard, part in zip(self.shards, parts, strict=True):
            shard.tell(PreloadTimers(part))
        usage: list[tuple[str, datetime, str]] = []
        if usage_since is not None:
            since = usage_since
            usage = [
                (c, parse_timestamp(a), ch)
                for c, a, ch in self.store(lambda s: s.cap_usage_since(since))
            ]
        self.governor.ask(LoadUsage(usage))

    def stop(self) -> None:
        """Stop every actor; the writer last, so it sees everything sent to it."""
        refs: list[pykka.ActorRef[Any]] = [*self.shards, self.governor, *self.dispatchers.values()]
        for ref in refs:
            ref.stop()
        self.writer.stop()
