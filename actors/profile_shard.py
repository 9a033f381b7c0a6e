"""ProfileShardActor: hosts the virtual profile actors of the customers hashed to it.

A profile actor per customer is *virtual*: activated on demand (from the store if it was
passivated), kept while in use, passivated (dropped, its state already in the store)
when idle beyond the shard's budget. One shard thread serves any number of customers,
so threads stay bounded whatever the customer count.

Each customer's work stays in order: while one of its sends waits for the governor,
nothing else of that customer runs; other customers go on.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pykka

from omniconsole.actors.messages import (
    ApplyBatch,
    DecideBatch,
    Decided,
    FlushState,
    NextDue,
    Passivate,
    PreloadTimers,
    Rows,
)
from omniconsole.adapters.store.base import ProfileSource, Store
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.flow import CustomerFlow, Effects, Flow, TimedEvent
from omniconsole.domain.governor import Decision, SendRequest
from omniconsole.domain.profile import Profile
from omniconsole.domain.records import ProfileRecord
from omniconsole.domain.timeutil import format_timestamp

FLUSH_CHUNK = 2000  # profiles per message to the writer


@dataclass(slots=True)
class _Running:
    """A batch in progress: flows waiting for governor decisions."""

    message: ApplyBatch
    waiting: dict[str, Flow] = field(default_factory=dict)
    outgoing: list[SendRequest] = field(default_factory=list)
    token: int = 0


class ProfileShardActor(pykka.ThreadingActor):
    """Virtual profile actors for one shard of the customers. All hooks run on its thread."""

    def __init__(
        self,
        config: EngineConfig,
        governor: pykka.ActorRef[Any],
        writer: pykka.ActorRef[Any],
        store: Store,
        *,
        store_backed: bool,
        live: bool = False,
        available: frozenset[Channel] | None = None,
    ) -> None:
        super().__init__()
        self.flow = CustomerFlow(config, with_recipient=live, available=available)
        self.governor = governor
        self.writer = writer
        self.store = store
        self.reader: ProfileSource | None = None
        self.store_backed = store_backed  # profiles may exist in the store (resume)
        self.active: OrderedDict[str, Profile] = OrderedDict()
        self.passivated: set[str] = set()
        self.dirty: set[str] = set()
        self.effects = Effects()
        self.timer_heap: list[tuple[datetime, str]] = []
        self.scheduled: dict[str, datetime] = {}  # customer -> due of its live heap entry
        self.queue: deque[ApplyBatch] = deque()
        self.running: _Running | None = None
        self.tokens = 0

    def on_stop(self) -> None:
        """Runs on the shard thread."""
        if self.reader is not None:
            self.reader.close()

    def on_receive(self, message: Any) -> Any:
        """Runs on the shard thread."""
        if isinstance(message, ApplyBatch):
            self.queue.append(message)
            if self.running is None:
                self._next_batch()
            return None
        if isinstance(message, Decided):
            self._decided(message)
            return None
        if isinstance(message, FlushState):
            return self._flush(message.now)
        if isinstance(message, Passivate):
            self._passivate(message.max_active)
            return None
        if isinstance(message, PreloadTimers):
            for customer, due in message.heads:
                self._schedule(customer, due)
            return None
        if isinstance(message, NextDue):
            return self.timer_heap[0][0] if self.timer_heap else None
        raise TypeError(f"ProfileShardActor: unexpected message {message!r}")

    # ---- batches ----

    def _next_batch(self) -> None:
        while self.queue and self.running is None:
            message = self.queue.popleft()
            try:
                self._start(message)
            except BaseException as exc:  # report to the driver instead of dying silently
                self.running = None
                message.done.set_exception(exc)

    def _start(self, message: ApplyBatch) -> None:
        groups: dict[str, list[TimedEvent]] = {}
        for timed in message.events:
            group = groups.get(timed.event.customer)
            if group is None:
                groups[timed.event.customer] = [timed]
            else:
                group.append(timed)
        horizon = message.horizon
        heap = self.timer_heap
        due: list[str] = []
        scheduled = self.scheduled
        while heap and (horizon is None or heap[0][0] < horizon):
            when, customer = heapq.heappop(heap)
            if scheduled.get(customer) != when:
                continue  # superseded by an earlier entry
            del scheduled[customer]
            if customer not in groups:
                due.append(customer)
        run = _Running(message)
        self.running = run
        for customer, events in groups.items():
            self._advance(
                run,
                customer,
                self.flow.run(self._activate(customer), events, horizon, self.effects),
                None,
            )
        seen: set[str] = set()
        for customer in due:
            if customer in seen:
                continue
            seen.add(customer)
            self._advance(
                run,
                customer,
                self.flow.run(self._activate(customer), (), horizon, self.effects),
                None,
            )
        self._settle(run)

    def _advance(self, run: _Running, customer: str, flow: Flow, decision: Decision | None) -> None:
        try:
            request = next(flow) if decision is None else flow.send(decision)
        except StopIteration:
            self.dirty.add(customer)
            profile = self.active[customer]
            if profile.timers:
                self._schedule(customer, profile.timers[0].due)
            return
        run.waiting[customer] = flow
        run.outgoing.append(request)

    def _schedule(self, customer: str, due: datetime) -> None:
        current = self.scheduled.get(customer)
        if current is None or due < current:
            self.scheduled[customer] = due
            heapq.heappush(self.timer_heap, (due, customer))

    def _settle(self, run: _Running) -> None:
        if run.outgoing:
            self.tokens += 1
            run.token = self.tokens
            requests, run.outgoing = run.outgoing, []
            self.governor.tell(DecideBatch(run.token, requests, self.actor_ref))
            return
        if not run.waiting:
            self.running = None
            run.message.done.set_result(len(run.message.events))
            self._next_batch()

    def _decided(self, message: Decided) -> None:
        run = self.running
        if run is None or message.token != run.token:
            raise RuntimeError("ProfileShardActor: decisions for a batch that is not running")
        try:
            waiting, run.waiting = run.waiting, {}
            for flow_customer, decision in zip(list(waiting), message.decisions, strict=True):
                self._advance(run, flow_customer, waiting[flow_customer], decision)
            self._settle(run)
        except BaseException as exc:
            self.running = None
            run.message.done.set_exception(exc)
            self._next_batch()

    # ---- virtual actors ----

    def _activate(self, customer: str) -> Profile:
        profile = self.active.get(customer)
        if profile is not None:
            self.active.move_to_end(customer)
            return profile
        raw = None
        if self.store_backed or customer in self.passivated:
            if self.reader is None:
                self.reader = self.store.profiles()
            raw = self.reader.load(customer)
            self.passivated.discard(customer)
        profile = Profile.from_json(raw) if raw is not None else Profile(customer)
        self.active[customer] = profile
        return profile

    def _passivate(self, max_active: int) -> None:
        active = self.active
        # a flow waiting for the governor holds its profile: in use, not idle, even if clean
        waiting = self.running.waiting if self.running is not None else {}
        while len(active) > max_active:
            customer, _ = next(iter(active.items()))
            if customer in self.dirty or customer in waiting:
                break
            del active[customer]
            self.passivated.add(customer)

    def _flush(self, now: datetime) -> int:
        """Send every changed profile to the writer, in chunks (memory stays flat)."""
        stamp = format_timestamp(now)
        count = len(self.dirty)
        chunk: list[ProfileRecord] = []
        for customer in self.dirty:
            profile = self.active[customer]
            traits = profile.traits
            email = traits.get("email")
            phone = traits.get("phone")
            chunk.append(
                ProfileRecord(
                    customer,
                    email if isinstance(email, str) else None,
                    phone if isinstance(phone, str) else None,
                    stamp,
                    format_timestamp(profile.timers[0].due) if profile.timers else None,
                    profile.dumps().decode(),
                )
            )
            if len(chunk) >= FLUSH_CHUNK:
                self.writer.tell(Rows(chunk))
                chunk = []
        self.writer.tell(Rows(chunk))
        self.writer.tell(Rows(self.effects.rows()))
        self.dirty.clear()
        return count
