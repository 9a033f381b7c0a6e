"""The live engine behind `omniconsole serve`: the actor runtime on the real clock.

One commit thread drives the runtime, like the replay driver does: it takes the events
the HTTP front hands in, applies them at the current time together with every timer
that came due, and commits a checkpoint — events, decisions and outbox rows in one
transaction — before the HTTP front answers 200 (group commit: many requests, one
transaction). Dispatchers send only what a committed checkpoint holds.

Failures the adapters report come back here and enter the timeline as events
(`Unsubscribed` when the provider says the recipient opted out, then `Message Failed`),
so the fallback of SPEC §5 runs exactly as for a status webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from omniconsole.actors.messages import DeliveryFailure
from omniconsole.actors.runtime import ActorEngine, LiveWiring
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestResult
from omniconsole.adapters.store.base import Store, StoreReader
from omniconsole.domain.channels import Channel
from omniconsole.domain.clock import Clock, RealClock
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.events import Event
from omniconsole.domain.records import HealthRecord
from omniconsole.domain.templates import TemplateSet
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp
from omniconsole.engine.protocol import Cut, DeliveringEngine


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
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
        *,
        not_configured: Mapping[Channel, str] | None = None,
        clock: Clock | None = None,
        tick: float = 0.2,
        shards: int = 2,
        max_active: int = 50_000,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock or RealClock()
        self.tick = tick
        self.max_active = max_active
        self.adapters = adapters
        self.not_configured = dict(not_configured or {})
        self.engine: DeliveringEngine = ActorEngine(
            config,
            store,
            resume=True,
            shards=shards,
            live=LiveWiring(dict(adapters), templates, loop, self._failed, self._result),
        )
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._failures: queue.Queue[DeliveryFailure] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-commit", daemon=True)
        self._queries: StoreReader | None = None
        self._seen: set[str] = set()
        self._last: datetime | None = None
        self._ledger_id = 0
        self._counts: dict[str, int] = defaultdict(int)
        self._error: BaseException | None = None

    # ---- life cycle ----

    def start(self) -> None:
        """Restore state from the store, re-send what a crash left in flight, start ticking."""
        engine = self.engine
        meta = engine.meta()
        self._queries = self.store.reader()
        self._seen = self._queries.message_ids()
        if meta.get("clock"):
            self._last = parse_timestamp(meta["clock"])
        self._counts.update(orjson.loads(meta.get("counters", "{}")))
        now = self._now()
        engine.checkpoint(Cut(self._meta(now, static=True), now, self.max_active))
        self._ledger_id = max((r.id for r in self._queries.ledger_since(0)), default=0)
        engine.resend(self._queries.pending_outbox())
        self._thread.start()

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Finish the current tick, let sends in flight answer, commit, stop the actors.

        Call it off the event loop the adapters run on: their answers need that loop.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._error is None:
            deadline = time.monotonic() + drain_seconds
            while time.monotonic() < deadline and self.engine.in_flight():
                self._stop.wait(0.05)  # adapters answer on their own loop; nothing to wait on
            now = self._now()
            self.engine.checkpoint(Cut(self._meta(now), now, self.max_active))
        if self._queries is not None:
            self._queries.close()
        self.engine.stop()

    # ---- the HTTP front's side ----

    def submit(self, events: list[Event]) -> Future[IngestResult]:
        """Queue events; the future resolves once they are committed."""
        request = _Request(list(events))
        if self._error is not None or self._stop.is_set():
            request.done.set_exception(RuntimeError("the engine is not running"))
            return request.done
        self._requests.put(request)
        return request.done

    async def accept(self, events: list[Event]) -> IngestResult:
        """IngestSink: durable before it returns."""
        return await asyncio.wrap_future(self.submit(events))

    async def customer_for_phone(self, phone: str) -> str | None:
        """IngestSink: the customer with this phone number."""
        queries = self._queries
        if queries is None:
            return None
        customers = await asyncio.to_thread(queries.customers_for_phone, phone)
        return customers[0] if customers else None

    def health(self) -> dict[str, Any]:
        """IngestSink: details for /healthz."""
        channels: dict[str, str] = {}
        for channel in Channel:
            if channel is Channel.IN_APP:
                channels[channel.value] = "up"
            elif channel in self.adapters:
                channels[channel.value] = self._adapter_state(channel)
            else:
                channels[channel.value] = "not_configured"
        return {
            "engine": "running" if self._thread.is_alive() else "stopped",
            "channels": channels,
            "queue": self._requests.qsize(),
            "clock": None if self._last is None else format_timestamp(self._last),
        }

    # ---- callbacks from dispatcher threads ----

    def _failed(self, failure: DeliveryFailure) -> None:
        self._failures.put(failure)

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
            except BaseException as exc:  # keep the HTTP front honest: 503 from now on
                self._error = exc
                for request in requests:
                    if not request.done.done():
                        request.done.set_exception(exc)
                raise
        while True:  # nothing accepted is left unanswered
            try:
                self._requests.get_nowait().done.set_exception(RuntimeError("shutting down"))
            except queue.Empty:
                break

    def _step(self, requests: list[_Request]) -> None:
        now = self._now()
        results: list[IngestResult] = []
        for request in requests:
            accepted = 0
            dups: set[str] = set()
            for event in request.events:
                mid = event.message_id
                if mid is not None and mid in self._seen:
                    dups.add(mid)
                    continue
                if mid is not None:
                    self._seen.add(mid)
                self._admit(event, now)
                accepted += 1
            results.append(IngestResult(accepted, len(request.events) - accepted, frozenset(dups)))
        while True:
            try:
                failure = self._failures.get_nowait()
            except queue.Empty:
                break
            for event in self._failure_events(failure, now):
                if event.message_id not in self._seen:
                    self._seen.add(event.message_id or "")
                    self._admit(event, now)
        self.engine.apply(now)
        self.engine.checkpoint(Cut(self._meta(now), now, self.max_active))
        for request, result in zip(requests, results, strict=True):
            request.done.set_result(result)
        self._count_decisions()
        self.metrics.queue_depth("ingest", self._requests.qsize())

    def _admit(self, event: Event, now: datetime) -> None:
        late = event.at < now
        self._counts["read"] += 1
        self._counts["applied"] += 1
        self._counts["late"] += int(late)
        self.engine.add(event.line, event, now, late, orjson.dumps(event.to_json()))

    @staticmethod
    def _failure_events(failure: DeliveryFailure, now: datetime) -> list[Event]:
        props: dict[str, Any] = {
            "channel": failure.channel,
            "message_id": failure.message_id,
            "journey": failure.journey,
            "step": failure.step,
            "error_code": failure.error_code,
            "source": "adapter",
        }
        events = []
        if failure.opted_out:
            events.append(
                Event("track", failure.customer, now, "Unsubscribed",
                      properties={"channel": failure.channel, "source": "provider"},
                      message_id=f"{failure.message_id}:opted-out")
            )  # fmt: skip
        events.append(
            Event("track", failure.customer, now, "Message Failed", properties=props,
                  message_id=f"{failure.message_id}:failed")
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

    def _count_decisions(self) -> None:
        if self._queries is None:
            return
        for tail in self._queries.ledger_since(self._ledger_id):
            self._ledger_id = tail.id
            self.metrics.decision(tail.reason or tail.outcome)
