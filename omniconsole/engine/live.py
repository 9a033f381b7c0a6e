"""The live engine behind `omniconsole serve`: the actor runtime on the real clock.

One commit thread drives the runtime, like the replay driver does: it takes the events
the HTTP front hands in, applies them at the current time together with every timer
that came due, and commits a checkpoint — events, decisions and outbox rows in one
transaction — before the HTTP front answers 200 (group commit: many requests, one
transaction).

Delivery is the runner's (`omniconsole.engine.delivery`), on a loop and threads of its
own: the commit thread wakes it after each checkpoint, and settles the final outcomes it
hands back in the next one — the final ledger line, cap usage, the outbox row marked
settled, and for a failure the events of SPEC §5 (`Unsubscribed` when the provider says
the recipient opted out, then `Message Failed`), so the fallback runs exactly as for a
status webhook.

No request stops the commit thread: an event that does not pass the door
(`check_event`) is refused for its request alone (`IngestResult.rejected`), and a
customer whose events fail inside the engine is quarantined by its shard. Only a failure
of the engine itself — the store, an actor — stops it; `health()` then says it does not
accept (and `/healthz` answers 503).

Over 400 lines: the commit thread, its health and the store lookups the HTTP front
needs share one lock discipline; delivery lives in `delivery.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from omniconsole.actors.dispatcher import final_record
from omniconsole.actors.governor import error_line
from omniconsole.actors.runtime import ActorEngine, LiveWiring
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.channels.settings import DeliverySettings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestResult
from omniconsole.adapters.store.base import ProfileSource, Store, StoreReader
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Channel
from omniconsole.domain.clock import Clock, RealClock
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.events import Event, EventError, check_event
from omniconsole.domain.records import OUTBOX_SENT, CapUsageRecord, HealthRecord
from omniconsole.domain.templates import TemplateSet
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp
from omniconsole.domain.tracking import LinkTracker
from omniconsole.engine.delivery import DeliveryRunner, Outcome
from omniconsole.engine.protocol import Cut, DeliveringEngine
from omniconsole.engine.seen_ids import SeenIds

log = logging.getLogger("omniconsole.live")

#: events in which a provider reports on one of our sends (`properties.message_id`)
_PROVIDER_REPORTS = frozenset({"Message Delivered", "Message Failed"})


@dataclass(slots=True)
class _Request:
    events: list[Event]
    done: Future[IngestResult] = field(default_factory=Future)


class LiveEngine:
    """Ingest → decide → commit → deliver, on the real clock. Thread-safe `submit`."""

    def __init__(
        self,
        config: EngineConfig,
        store: Store,
        adapters: Mapping[Channel, ChannelAdapter],
        templates: TemplateSet | None,
        metrics: Metrics,
        *,
        delivery: DeliverySettings | None = None,
        not_configured: Mapping[Channel, str] | None = None,
        clock: Clock | None = None,
        tick: float = 0.2,
        shards: int = 2,
        max_active: int = 50_000,
        poll: float = 0.5,
        tracker: LinkTracker | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock or RealClock()
        self.tick = tick
        self.max_active = max_active
        self.adapters = dict(adapters)
        self.not_configured = dict(not_configured or {})
        self.engine: DeliveringEngine = ActorEngine(
            config,
            store,
            resume=True,
            shards=shards,
            live=LiveWiring(templates, frozenset(adapters), tracker),
        )
        self.runner = DeliveryRunner(
            self.adapters,
            store.outbox,
            delivery or DeliverySettings(),
            self.clock,
            self._on_final,
            on_attempt=self._result,
            poll=poll,
        )
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-commit", daemon=True)
        self._queries: StoreReader | None = None
        self._lookups: StoreReader | None = None
        self._lookups_lock = threading.Lock()
        self._profiles: ProfileSource | None = None  # the preference page's reads
        #: applied message ids; a digest hit is confirmed by the store (commit thread)
        self._seen = SeenIds(self._committed)
        self._last: datetime | None = None
        self._ledger_id = 0
        self._counts: dict[str, int] = defaultdict(int)
        self._error: BaseException | None = None

    # ---- life cycle ----

    def start(self) -> None:
        """Restore state from the store, settle and take up what a crash left, start.
        If that fails, the actors are stopped before the error is raised."""
        try:
            self._start()
        except BaseException:
            self._error = RuntimeError("the engine did not start")
            for reader in (self._queries, self._lookups):
                if reader is not None:
                    reader.close()
            self.engine.stop()
            raise

    def _start(self) -> None:
        engine = self.engine
        meta = engine.meta()
        self._queries = self.store.reader()
        self._lookups = self.store.reader()
        self._seen.seed(self._queries.message_ids())
        if meta.get("clock"):
            self._last = parse_timestamp(meta["clock"])
        self._counts.update(orjson.loads(meta.get("counters", "{}")))
        now = self._now()
        engine.checkpoint(Cut(self._meta(now, static=True), now, self.max_active))
        self._ledger_id = max((r.id for r in self._queries.ledger_since(0)), default=0)
        self.runner.start()  # hands over outcomes a crash left unsettled first
        self._thread.start()

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop taking events; give sends in flight `drain_seconds` to answer; settle
        and commit what they answered; stop the actors."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.runner.stop(drain_seconds)
        if self._error is None:
            try:
                self._step([])  # the outcomes that came in while draining
            except BaseException:
                log.exception("the last checkpoint failed")
        for reader in (self._queries, self._lookups, self._profiles):
            if reader is not None:
                reader.close()
        self.engine.stop()

    # ---- the HTTP front's side ----

    def submit(self, events: list[Event]) -> Future[IngestResult]:
        """Queue events; the future resolves once they are committed."""
        request = _Request(list(events))
        if not self.accepting:
            request.done.set_exception(RuntimeError("the engine is not running"))
            return request.done
        self._requests.put(request)
        return request.done

    async def accept(self, events: list[Event]) -> IngestResult:
        """IngestSink: durable before it returns."""
        return await asyncio.wrap_future(self.submit(events))

    async def customers_for_phone(self, phone: str) -> list[str]:
        """IngestSink: every customer whose profile holds this phone number."""
        return await asyncio.to_thread(self._customers_for_phone, phone)

    async def channel_state(self, customer: str) -> ChannelState | None:
        """PreferenceSource: the customer's channel state as last committed (every
        accepted event is committed before `accept` returns)."""
        return await asyncio.to_thread(self._channel_state, customer)

    def _channel_state(self, customer: str) -> ChannelState | None:
        with self._lookups_lock:
            if self._profiles is None:
                self._profiles = self.store.profiles()
            raw = self._profiles.load(customer)
        return None if raw is None else ChannelState.from_json(raw.get("channel_state"))

    def _customers_for_phone(self, phone: str) -> list[str]:
        with self._lookups_lock:
            return [] if self._lookups is None else self._lookups.customers_for_phone(phone)

    @property
    def accepting(self) -> bool:
        """Whether an event handed in now would be committed."""
        return self._error is None and not self._stop.is_set() and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        """IngestSink: details for /healthz (`accepting` False means 503)."""
        channels: dict[str, str] = {}
        for channel in Channel:
            if channel is Channel.IN_APP:
                channels[channel.value] = "up"
            elif channel in self.adapters:
                channels[channel.value] = self._adapter_state(channel)
            else:
                channels[channel.value] = "not_configured"
        accepting = self.accepting
        return {
            "accepting": accepting,
            "engine": "running" if accepting else "stopped",
            "error": None if self._error is None else error_line(self._error),
            "delivery": "running" if self.runner.alive else "stopped",
            "channels": channels,
            "queue": self._requests.qsize(),
            "clock": None if self._last is None else format_timestamp(self._last),
            "in_flight": self.runner.in_flight(),
            "outbox": self.runner.backlog(),
            "quarantined": self._quarantined_count(),
        }

    def _quarantined_count(self) -> int:
        """Customers whose events are no longer applied (the store's word; any thread)."""
        with self._lookups_lock:
            if self._lookups is None:
                return 0
            with contextlib.suppress(Exception):  # a health check must not raise for it
                return len(self._lookups.quarantined())
            return -1

    # ---- callbacks from the delivery runner's threads ----

    def _on_final(self, outcome: Outcome) -> None:
        self._outcomes.put(outcome)

    def _result(self, channel: str, status: str, seconds: float) -> None:
        self.metrics.send_recorded(channel, status)
        if seconds:
            self.metrics.adapter_latency(channel, seconds)

    # ---- the commit thread ----

    def _now(self) -> datetime:
        now = self.clock.now()
        if self._last is not None and now < self._last:
            now = self._last  # never backwards, whatever the wall clock does
        self._last = now
        return now

    def _run(self) -> None:
        last_health = 0.0
        while not self._stop.is_set():
            requests: list[_Request] = []
            with contextlib.suppress(queue.Empty):
                requests.append(self._requests.get(timeout=self.tick))
            while True:
                try:
                    requests.append(self._requests.get_nowait())
                except queue.Empty:
                    break
            try:
                self._step(requests)
                if time.monotonic() - last_health > 2.0:
                    self._write_health()
                    last_health = time.monotonic()
            except BaseException as exc:  # the engine itself failed: 503 from now on
                log.exception("the live engine stopped")
                self._error = exc
                for request in requests:
                    if not request.done.done():
                        request.done.set_exception(exc)
                break
        while True:  # nothing accepted is left unanswered
            try:
                self._requests.get_nowait().done.set_exception(RuntimeError("shutting down"))
            except queue.Empty:
                break

    def _step(self, requests: list[_Request]) -> None:
        now = self._now()
        results = [self._take(request.events, now) for request in requests]
        self._settle(now)
        self.engine.apply(now)
        self.engine.checkpoint(Cut(self._meta(now), now, self.max_active))
        self._seen.committed()
        self.runner.wake()
        for request, result in zip(requests, results, strict=True):
            request.done.set_result(result)
        self._count_decisions()
        self.metrics.queue_depth("ingest", self._requests.qsize())

    def _committed(self, message_id: str) -> bool:
        """Whether a committed applied event has this id (the commit thread)."""
        assert self._queries is not None
        return self._queries.has_message_id(message_id)

    def _take(self, events: list[Event], now: datetime) -> IngestResult:
        """One request's events into the batch; refused ones are named, not fatal."""
        accepted = 0
        duplicates: set[str] = set()
        repeats = 0
        rejected: list[tuple[int, str]] = []
        for index, event in enumerate(events):
            mid = event.message_id
            if mid is not None and mid in self._seen:
                duplicates.add(mid)
                repeats += 1
                continue
            try:
                check_event(event)
                raw = orjson.dumps(event.to_json())
            except (EventError, TypeError, ValueError) as exc:  # orjson: JSONEncodeError
                rejected.append((index, str(exc)))
                continue
            if mid is not None:
                self._seen.add(mid)
            self._admit(event, now, raw)
            accepted += 1
        return IngestResult(accepted, repeats, frozenset(duplicates), tuple(rejected))

    def _admit(self, event: Event, now: datetime, raw: bytes) -> None:
        late = event.at < now
        self._counts["read"] += 1
        self._counts["applied"] += 1
        self._counts["late"] += int(late)
        self.engine.add(event.line, event, now, late, raw)
        if event.name in _PROVIDER_REPORTS:
            sent = event.properties.get("message_id")
            if isinstance(sent, str):
                self.runner.heard_of(sent)

    def _settle(self, now: datetime) -> None:
        """Final outcomes from the runner: ledger line, cap usage, settled outbox row, and
        a failure's events — all in the checkpoint about to commit."""
        while True:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return
            entry, update, result = outcome.entry, outcome.update, outcome.result
            engine = self.engine
            if update.status == OUTBOX_SENT:
                engine.write([final_record(entry, "sent", None)])
                if entry.capped:
                    engine.write(
                        [CapUsageRecord(entry.message_id, entry.customer, entry.at, entry.channel)]
                    )
            else:
                code = result.error_code or "error"
                failed = replace(entry, detail=result.detail or code)
                engine.write([final_record(failed, "failed", f"adapter:{code}")])
                if entry.capped:
                    engine.release(entry.customer, entry.message_id, entry.at, entry.channel)
                for event in self._failure_events(outcome, now):
                    mid = event.message_id
                    if mid is None or mid not in self._seen:
                        if mid is not None:
                            self._seen.add(mid)
                        self._admit(event, now, orjson.dumps(event.to_json()))
            engine.write([entry.settled(update)])

    @staticmethod
    def _failure_events(outcome: Outcome, now: datetime) -> list[Event]:
        entry, result = outcome.entry, outcome.result
        line = entry.line
        props: dict[str, Any] = {
            "channel": entry.channel,
            "message_id": entry.message_id,
            "journey": line["journey"],
            "step": line["step"],
            "error_code": result.error_code or "error",
            "source": "adapter",
        }
        events = []
        if result.opted_out:
            events.append(
                Event("track", entry.customer, now, "Unsubscribed",
                      properties={"channel": entry.channel, "source": "provider"},
                      message_id=f"{entry.message_id}:opted-out")
            )  # fmt: skip
        events.append(
            Event("track", entry.customer, now, "Message Failed", properties=props,
                  message_id=f"{entry.message_id}:failed")
        )  # fmt: skip
        return events

    def _meta(self, now: datetime, *, static: bool = False) -> dict[str, str]:
        meta = {
            "clock": format_timestamp(now),
            "counters": orjson.dumps(dict(self._counts)).decode(),
            "status": "running",
            "mode": "serve",
        }
        if static:
            channels = {}
            for channel in Channel:
                if channel is Channel.IN_APP or channel in self.adapters:
                    channels[channel.value] = {"configured": True, "mode": "live", "detail": ""}
                else:
                    channels[channel.value] = {
                        "configured": False,
                        "mode": "live",
                        "detail": self.not_configured.get(channel, "not configured"),
                    }
            meta.update(
                config_dir=str(self.config.directory),
                policy=orjson.dumps(self.config.policy.to_json()).decode(),
                journeys=orjson.dumps([j.to_json() for j in self.config.journeys]).decode(),
                channels=orjson.dumps(channels).decode(),
            )
        return meta

    def _adapter_state(self, channel: Channel) -> str:
        adapter = self.adapters.get(channel)
        health = getattr(adapter, "health", None)
        if health is None:
            return "up"
        state = health().get(channel, "up")
        return str(state)

    def _write_health(self) -> None:
        stamp = format_timestamp(self.clock.now())
        rows = []
        for channel in Channel:
            if channel is Channel.IN_APP:
                rows.append(HealthRecord(channel.value, "up", "inbox in the store", stamp))
            elif channel in self.adapters:
                rows.append(HealthRecord(channel.value, self._adapter_state(channel), "", stamp))
            else:
                detail = self.not_configured.get(channel, "not configured")
                rows.append(HealthRecord(channel.value, "not_configured", detail, stamp))
        self.engine.write(rows)
        backlog = self.runner.backlog()
        for channel in Channel:
            waiting = backlog.get(channel.value, {})
            depth = sum(v for k, v in waiting.items() if k != "oldest")
            self.metrics.queue_depth(f"outbox_{channel.value}", depth)

    def _count_decisions(self) -> None:
        if self._queries is None:
            return
        for tail in self._queries.ledger_since(self._ledger_id):
            self._ledger_id = tail.id
            self.metrics.decision(tail.reason or tail.outcome)
