"""ActorEngine: the engine as one actor system in this process (an `Engine`).

    profile shards ──SendRequest──▶ governor ──Dispatch──▶ channel dispatchers
          ▲                            │                         │
          └──────── Decided ───────────┘                         ▼
                     every actor ──Rows──▶ store writer ──▶ SQLite

It implements `omniconsole.engine.protocol.Engine` (and, wired for live sends,
`DeliveringEngine`). Its caller (a replay, a partition process or the live service)
is not an actor, so it may wait on futures: it waits for batches to finish and for
checkpoints to commit.
"""

from __future__ import annotations

import queue
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pykka

from omniconsole.actors.dispatcher import ChannelDispatcherActor
from omniconsole.actors.governor import FatigueGovernorActor
from omniconsole.actors.messages import (
    ApplyBatch,
    Checkpoint,
    FlushState,
    ForgetUsageBefore,
    LoadUsage,
    NextDue,
    Passivate,
    PreloadTimers,
    Quarantined,
    Release,
    Rows,
    StoreCall,
    Sync,
)
from omniconsole.actors.profile_shard import ProfileShardActor
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.store.base import Store
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.events import Event
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.records import EventRecord, StoreRecord, event_record
from omniconsole.domain.templates import TemplateSet
from omniconsole.domain.timeutil import parse_timestamp
from omniconsole.domain.tracking import LinkTracker

if TYPE_CHECKING:
    from omniconsole.engine.protocol import Cut

#: messages waiting for the store writer before the driver waits for it to catch up
WRITER_BACKLOG = 32


class ActorFailure(RuntimeError):
    """An actor of the runtime stopped unexpectedly; the message says which."""


@dataclass(frozen=True)
class LiveWiring:
    """What a live runtime needs beyond a replay's: the templates sends are rendered
    with, and the channels that can be delivered (configured ones, and in-app)."""

    templates: TemplateSet | None
    available: frozenset[Channel]
    #: rewrites links for click tracking and adds the open pixel; None: off
    tracker: LinkTracker | None = None


class ActorEngine:
    """The running actor system for one store (an `Engine`).

    `resume`: continue from the store's last checkpoint — profiles are activated from
    it, and pending timers and cap usage are restored before the first batch. Otherwise
    the store starts empty.
    """

    def __init__(
        self,
        config: EngineConfig,
        store: Store,
        *,
        resume: bool,
        shards: int = 2,
        live: LiveWiring | None = None,
    ) -> None:
        self.config = config
        self.live = live
        self.writer = StoreWriterActor.start(store, fresh=not resume)
        self.dispatchers: dict[Channel, pykka.ActorRef[Any]] = {}
        for ch in Channel:
            self.dispatchers[ch] = ChannelDispatcherActor.start(
                ch,
                self.writer,
                live=live is not None,
                templates=None if live is None else live.templates,
                tracker=None if live is None else live.tracker,
            )
        self.governor = FatigueGovernorActor.start(config.policy, self.dispatchers, self.writer)
        available = None if live is None else live.available | {Channel.IN_APP}
        self.shards = [
            ProfileShardActor.start(
                config,
                self.governor,
                self.writer,
                store,
                store_backed=resume,
                live=live is not None,
                available=available,
            )
            for _ in range(shards)
        ]
        self._in_flight: list[Future[int]] = []
        self._batch = 0
        self._events: list[TimedEvent] = []
        self._records: list[EventRecord] = []
        if resume:
            self._restore()

    def all_refs(self) -> list[pykka.ActorRef[Any]]:
        return [*self.shards, self.governor, *self.dispatchers.values(), self.writer]

    def shard_of(self, customer: str) -> int:
        """Stable shard index of a customer (crc32: the same in every process)."""
        return zlib.crc32(customer.encode()) % len(self.shards)

    # ---- Engine ----

    def add(self, line: int, event: Event, at: datetime, late: bool, raw: bytes) -> None:
        """Take one accepted event into the batch being built."""
        self._records.append(event_record(line, event, at, late, raw))
        self._events.append(TimedEvent(at, event))

    def apply(self, horizon: datetime | None) -> None:
        """Write the batch's events and hand them to the shards (see `apply_events`)."""
        events, records = self._events, self._records
        self._events, self._records = [], []
        self.write(records)
        self.apply_events(events, horizon)

    def apply_events(
        self, events: Sequence[TimedEvent], horizon: datetime | None, window: int = 2
    ) -> None:
        """Give every shard its part of `events`, then timers due before `horizon`; at
        most `window` batches in flight per shard."""
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

    def write(self, records: Sequence[StoreRecord]) -> None:
        """Records written by the caller (events, rejects, health) in the current checkpoint."""
        if records:
            self.writer.tell(Rows(records))

    def checkpoint(self, cut: Cut) -> None:
        """Commit a consistent cut: everything applied so far, profiles and `cut.meta`."""
        self.drain()
        for shard in self.shards:
            shard.ask(FlushState(cut.now))
        self.governor.ask(Sync())
        for dispatcher in self.dispatchers.values():
            dispatcher.ask(Sync())
        self.writer.ask(Checkpoint(cut.meta))
        self.governor.tell(ForgetUsageBefore(cut.now))
        for shard in self.shards:
            shard.tell(Passivate(cut.max_active // len(self.shards), cut.budget))

    def meta(self) -> dict[str, str]:
        """The store's committed run facts."""
        return cast(dict[str, str], self.store(lambda s: s.meta()))

    def stop(self) -> None:
        """Stop every actor; the writer last, so it sees everything sent to it."""
        refs: list[pykka.ActorRef[Any]] = [*self.shards, self.governor, *self.dispatchers.values()]
        for ref in refs:
            ref.stop()
        self.writer.stop()

    # ---- DeliveringEngine (live) ----

    def release(self, customer: str, message_id: str, at: str, channel: str) -> None:
        """A capped send failed at its provider: it no longer counts against the caps."""
        self.governor.tell(Release(customer, message_id, at, channel))

    # ---- internals ----

    def store(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(store)` on the writer (ordered after every record sent before)."""
        return self.writer.ask(StoreCall(fn))

    def _restore(self) -> None:
        """After a restart: each shard's pending timers, and the governor's cap usage that
        the windows reaching back from the last checkpoint's clock can still count."""
        quarantined: dict[str, str] = self.store(lambda s: s.quarantined())
        if quarantined:
            by_shard: list[dict[str, str]] = [{} for _ in self.shards]
            for customer, reason in quarantined.items():
                by_shard[self.shard_of(customer)][customer] = reason
            for shard, part_q in zip(self.shards, by_shard, strict=True):
                shard.tell(Quarantined(part_q))  # before the timers: theirs are not kept
        parts: list[list[tuple[str, datetime]]] = [[] for _ in self.shards]
        for customer, due in self.store(lambda s: s.timer_heads()):
            parts[self.shard_of(customer)].append((customer, parse_timestamp(due)))
        for shard, part in zip(self.shards, parts, strict=True):
            shard.tell(PreloadTimers(part))
        clock = self.meta().get("clock")
        usage: list[tuple[str, datetime, str]] = []
        if clock:
            since = parse_timestamp(clock) - self.config.policy.longest_window
            usage = [
                (c, parse_timestamp(a), ch)
                for c, a, ch in self.store(lambda s: s.cap_usage_since(since))
            ]
        self.governor.ask(LoadUsage(usage))
