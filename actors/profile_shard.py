"""ProfileShardActor: hosts the virtual profile actors of the customers hashed to it.

A profile actor per customer is *virtual*: activated on demand (from the store if it was
passivated), kept while in use, passivated (dropped, its state already in the store)
when idle beyond the shard's budget. One shard thread serves any number of customers,
so threads stay bounded whatever the customer count.

Each customer's work stays in order: while one of its sends waits for the governor,
nothing else of that customer runs; other customers go on.

A customer whose events cannot be applied — an exception from its flow, its stored
profile, its decision or its serialisation — is *quarantined*: recorded in the store
(`QuarantineRecord`, kept across restarts), its in-memory profile dropped, and its later
events stored but not applied, each with a rejects line. The error stops one customer,
never the shard: no input may stop the engine.

(Over 400 lines: one actor, whose batch loop, passivation and quarantine share the
shard's tables of live and passive profiles; split, each part would reach into them.)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from sys import intern
from typing import Any

import orjson
import pykka

from omniconsole.actors.governor import DECISION_FAILED, error_line
from omniconsole.actors.messages import (
    ApplyBatch,
    DecideBatch,
    Decided,
    FlushState,
    NextDue,
    Passivate,
    PreloadTimers,
    Quarantined,
    Rows,
)
from omniconsole.actors.spill import Evicted, EvictedProfiles
from omniconsole.adapters.store.base import ProfileSource, Store
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.flow import CustomerFlow, Effects, Flow, TimedEvent
from omniconsole.domain.governor import Decision, SendRequest
from omniconsole.domain.profile import Profile
from omniconsole.domain.records import (
    InstanceRecord,
    ProfileRecord,
    QuarantineRecord,
    RejectRecord,
)
from omniconsole.domain.timeutil import format_timestamp

FLUSH_CHUNK = 2000  # profiles per message to the writer
#: a checkpoint's chunks waiting in the writer's mailbox at once: the flush waits for the
#: writer to take the oldest before it sends another. Without a bound every changed
#: profile of the interval queued there as text (~3 KB each: +50 MB per partition at
#: every checkpoint of a 200,000-customer replay, the top of its memory's sawtooth).
FLUSH_WINDOW = 2
#: customers whose timers fire (no events) begun at once. A batch of timers alone can
#: hold most customers (the first step after a million customers' log: deferred sends
#: all due when quiet hours end), and every profile it loads stays in memory until the
#: batch is done: ~3.8 KB each, +240 MB per partition in 20 s. In chunks, the profiles
#: beyond --max-active leave memory between them. A customer's decisions depend on its
#: own history only, so the chunks change no decision.
TIMER_CHUNK = 5000


def profiles_kept(share: int, known: int) -> int:
    """Profiles a shard keeps in memory under a budget (`Passivate.budget`), knowing
    `known` customers: its `share` of `--max-active` at least, up to 2.5 times that
    while it knows few customers, less one for every ten it knows.

    A whole profile in memory is ~3.8 KB, what a known customer leaves behind when its
    profile is out (timer head, cap usage, its id) ~400 B: a tenth. So the budget is
    memory for 2.5 shares of profiles, counting the residue, and comes down to the
    share itself once the customers' residue outweighs the rest. Where every customer's
    profile fits, bringing profiles back and evicting them again costs 10-15 % of a
    replay's CPU (paired runs, the 100,000-customer bench log): at the default, such a
    log stays in memory whole at one partition or two.
    """
    return max(share, share * 5 // 2 - known // 10)


class _Group(list[TimedEvent]):
    """One customer's events in a batch, remembering the last one the flow read."""

    __slots__ = ("reached",)

    def __init__(self, events: Sequence[TimedEvent]) -> None:
        super().__init__(events)
        self.reached = -1

    def __getitem__(self, index: Any) -> Any:
        if index.__class__ is int:
            self.reached = index
        return list.__getitem__(self, index)


class DecisionFailed(RuntimeError):
    """The governor could not decide one of this customer's sends (it says why)."""


def _raw(timed: TimedEvent) -> str:
    """A quarantined event's text for its rejects line (the driver stored the original)."""
    try:
        return orjson.dumps(timed.event.to_json()).decode()
    except Exception:  # what made it fail may be what cannot be written
        return repr(timed.event)[:2000]


@dataclass(slots=True)
class _Running:
    """A batch in progress: flows waiting for governor decisions."""

    message: ApplyBatch
    groups: dict[str, _Group] = field(default_factory=dict)  # events per customer
    waiting: dict[str, Flow] = field(default_factory=dict)
    outgoing: list[SendRequest] = field(default_factory=list)
    token: int = 0
    due: list[str] = field(default_factory=list)  # timers only, begun TIMER_CHUNK at a time
    next_due: int = 0


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
        #: changed profiles evicted from memory before the checkpoint that stores them,
        #: with their changed journey instances (on disk until then)
        self.evicted = EvictedProfiles()
        self.max_active: int | None = None  # from the last Passivate
        self.budget = False  # the last Passivate's: `max_active` is then a share
        self.effects = Effects()
        self.timer_heap: list[tuple[datetime, str]] = []
        self.scheduled: dict[str, datetime] = {}  # customer -> due of its live heap entry
        self.queue: deque[ApplyBatch] = deque()
        self.running: _Running | None = None
        self.tokens = 0
        self.quarantined: dict[str, str] = {}  # customer -> reason

    def on_stop(self) -> None:
        """Runs on the shard thread."""
        self.evicted.close()
        if self.reader is not None:
            self.reader.close()

    def on_failure(self, *_: Any) -> None:
        """Runs on the shard thread after an uncaught error: remove the spill files."""
        self.evicted.close()

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
            self.max_active, self.budget = message.max_active, message.budget
            limit = self._limit()
            if limit is not None:
                self._passivate(limit)
            return None
        if isinstance(message, PreloadTimers):
            for customer, due in message.heads:
                self._schedule(customer, due)
            return None
        if isinstance(message, Quarantined):
            self.quarantined.update(message.customers)
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
        groups: dict[str, _Group] = {}
        for timed in message.events:
            group = groups.get(timed.event.customer)
            if group is None:
                # one string per customer, shared by every structure that outlives the
                # batch (timer heap, passivated ids, cap usage): ~65 bytes saved per copy
                groups[intern(timed.event.customer)] = _Group((timed,))
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
        run = _Running(message, groups)
        self.running = run
        quarantined = self.quarantined
        for customer, events in groups.items():
            if customer in quarantined:
                self._hold(customer, events)
            else:
                self._begin(run, customer, events, horizon)
        run.due = list(dict.fromkeys(due))  # once each, in the order they came due
        self._begin_due(run)
        self._settle(run)

    def _begin_due(self, run: _Running) -> None:
        """Begin the next TIMER_CHUNK customers whose timers fire in this batch."""
        start = run.next_due
        run.next_due = end = min(start + TIMER_CHUNK, len(run.due))
        quarantined, horizon = self.quarantined, run.message.horizon
        for customer in run.due[start:end]:
            if customer not in quarantined:
                self._begin(run, customer, (), horizon)

    def _begin(
        self,
        run: _Running,
        customer: str,
        events: Sequence[TimedEvent],
        horizon: datetime | None,
    ) -> None:
        try:
            profile = self._activate(customer)
        except Exception as exc:  # a stored profile that cannot be read
            self._quarantine(customer, exc, run)
            return
        self._advance(run, customer, self.flow.run(profile, events, horizon, self.effects), None)

    def _advance(self, run: _Running, customer: str, flow: Flow, decision: Decision | None) -> None:
        try:
            if decision is not None and decision.outcome == DECISION_FAILED:
                flow.close()
                raise DecisionFailed(decision.explanation)
            request = next(flow) if decision is None else flow.send(decision)
        except StopIteration:
            self.dirty.add(customer)
            profile = self.active[customer]
            if profile.timers:
                self._schedule(customer, profile.timers[0].due)
            return
        except Exception as exc:  # this customer only: the batch and the shard go on
            self._quarantine(customer, exc, run)
            return
        run.waiting[customer] = flow
        run.outgoing.append(request)

    # ---- quarantine ----

    def _quarantine(self, customer: str, exc: BaseException, run: _Running | None) -> None:
        """Stop applying `customer`'s events: record why, drop its in-memory profile."""
        reason = error_line(exc)
        self.quarantined[customer] = reason
        self.active.pop(customer, None)
        self.evicted.discard(customer)
        self.dirty.discard(customer)
        self.scheduled.pop(customer, None)
        group = run.groups.get(customer) if run is not None else None
        # the flow reads each event just before applying it: the last one it read is the
        # one it failed on (or, when a timer failed, the next one); later ones never ran
        events = list.__getitem__(group, slice(max(group.reached, 0), None)) if group else []
        since = ""
        if events:
            since = format_timestamp(events[0].at)
        elif run is not None and run.message.horizon is not None:
            since = format_timestamp(run.message.horizon)
        self.writer.tell(Rows([QuarantineRecord(customer, since, reason)]))
        if events:
            first = f"customer {customer!r} was quarantined applying this event ({reason})"
            rest = f"customer {customer!r} is quarantined ({reason}): not applied"
            self.writer.tell(
                Rows(
                    [
                        RejectRecord(t.event.line, rest if i else first, _raw(t))
                        for i, t in enumerate(events)
                    ]
                )
            )

    def _hold(self, customer: str, events: Sequence[TimedEvent]) -> None:
        """Events of a quarantined customer: stored by the driver, not applied here."""
        why = f"customer {customer!r} is quarantined ({self.quarantined[customer]}): not applied"
        self.writer.tell(Rows([RejectRecord(t.event.line, why, _raw(t)) for t in events]))

    def _schedule(self, customer: str, due: datetime) -> None:
        if customer in self.quarantined:
            return
        current = self.scheduled.get(customer)
        if current is None or due < current:
            self.scheduled[customer] = due
            heapq.heappush(self.timer_heap, (due, customer))

    def _limit(self) -> int | None:
        """Profiles to keep in memory (None: as many as there are)."""
        if self.max_active is None or not self.budget:
            return self.max_active
        known = len(self.active) + len(self.passivated) + len(self.evicted)
        return profiles_kept(self.max_active, known)

    def _settle(self, run: _Running) -> None:
        while not run.outgoing and not run.waiting and run.next_due < len(run.due):
            limit = self._limit()
            if limit is not None and len(self.active) > limit:
                self._evict(limit)  # nothing waits between chunks
            self._begin_due(run)
        if run.outgoing:
            self.tokens += 1
            run.token = self.tokens
            requests, run.outgoing = run.outgoing, []
            self.governor.tell(DecideBatch(run.token, requests, self.actor_ref))
            return
        if not run.waiting:
            self.running = None
            limit = self._limit()
            if limit is not None and len(self.active) > limit:
                self._evict(limit)
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
        evicted = self.evicted.pop(customer)
        if evicted is not None:  # changed since the checkpoint: still to be stored
            profile = Profile.loads(evicted.state)
            profile.customer = customer
            self.active[customer] = profile
            self.dirty.add(customer)
            return profile
        state = None
        if self.store_backed or customer in self.passivated:
            if self.reader is None:
                self.reader = self.store.profiles()
            state = self.reader.load_state(customer)
            self.passivated.discard(customer)
        profile = Profile.loads(state) if state is not None else Profile(customer)
        profile.customer = customer  # the shard's own (interned) string
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

    def _evict(self, max_active: int) -> None:
        """Keep at most `max_active` profiles in memory, least recently used out first:
        clean ones are dropped (the store has them), changed ones kept as their stored
        bytes until the next checkpoint writes them. Runs between batches (none waits)."""
        active = self.active
        dirty = self.dirty
        while len(active) > max_active:
            customer, profile = active.popitem(last=False)
            if customer in dirty:
                dirty.discard(customer)
                try:
                    evicted = Evicted.of(profile)
                except Exception as exc:  # its state cannot be stored: quarantine it
                    self._quarantine(customer, exc, None)
                    continue
                self.evicted.put(customer, evicted, self.effects.rows_of(customer))
            else:
                self.passivated.add(customer)

    def _flush(self, now: datetime) -> int:
        """Send every changed profile to the writer, in chunks, at most FLUSH_WINDOW of
        them waiting for it at once (memory stays flat).

        The profiles in memory are serialised into the spill file first, without
        waiting: the writer is still taking the rows sent before the checkpoint, and
        the serialising overlaps that. Then everything is read back and sent, paced."""
        stamp = format_timestamp(now)
        spill, dirty = self.evicted, self.dirty
        count = len(dirty) + len(spill)
        for customer in list(dirty):
            try:
                evicted = Evicted.of(self.active[customer])
            except Exception as exc:  # its state cannot be stored: quarantine, not a crash
                self._quarantine(customer, exc, None)
                continue
            spill.put(customer, evicted, ())
        sent: deque[pykka.Future[Any]] = deque()
        chunk: list[ProfileRecord] = []
        passivated = self.passivated
        for customer, stored in spill.drain():
            chunk.append(stored.record(customer, stamp))
            if customer not in dirty:
                passivated.add(customer)  # out of memory, and stored at this checkpoint
            if len(chunk) >= FLUSH_CHUNK:
                self._send(chunk, sent)
                chunk = []
        self._send(chunk, sent)
        rows: list[InstanceRecord] = []
        for row in spill.drain_rows():
            rows.append(row)
            if len(rows) >= FLUSH_CHUNK:
                self._send(rows, sent)
                rows = []
        self._send(rows + self.effects.rows(), sent)
        dirty.clear()
        return count

    def _send(self, records: list[Any], sent: deque[pykka.Future[Any]]) -> None:
        """One chunk of the flush to the writer; wait while FLUSH_WINDOW are before it.
        (The writer never waits for a shard, so this wait cannot deadlock.)"""
        sent.append(self.writer.ask(Rows(records), block=False))
        if len(sent) > FLUSH_WINDOW:
            sent.popleft().get()
