"""The delivery runner of `serve`: the outbox's sends go to their providers.

The engine decides and stages each live send as an outbox row (`pending`) in the
checkpoint that holds the decision. This runner takes them from there, on an event
loop and threads of its own — never the HTTP server's loop, so however slow or
saturated the providers are, ingest answers as fast as without them:

    outbox rows ──due──▶ one worker per channel ──send──▶ adapter (≤ `concurrency` in flight)
         ▲                                                   │
         └──── outcome committed at once (own connection) ◀──┘ ──final──▶ `on_final`

- Memory stays bounded: a worker reads at most as many due rows as it has free slots;
  the backlog waits in the store, not in memory.
- Each attempt's outcome is committed on the outbox's own connection before the slot is
  freed, a few milliseconds after the provider answered. A crash therefore repeats at
  most the sends that were on the wire; a restart takes up every row still waiting.
- A transient refusal (circuit open, 5xx, 429, connection refused, a timeout before the
  request left) leaves the send waiting (`retrying`) with a jittered exponential
  backoff; while a channel's circuit is open nothing is taken, while it probes one
  send at a time. A send still waiting at its category's maximum age ends `expired`.
- A timeout after the request left (`ambiguous`) is never sent again blindly: an
  adapter that can ask its provider (`ReconcilingAdapter`, Twilio) is asked first
  (`reconciling`), and the send goes again only if the provider has no such message;
  one that cannot (SMTP after DATA) ends `unconfirmed`.
- Final outcomes are handed to `on_final`; the live engine writes their ledger lines
  (and the fallback of SPEC §5) in its next checkpoint, which marks the row `settled`.
  Outcomes committed here whose ledger line never was (a crash between) are handed
  over again at start.

Threads: `start`/`wake`/`stop`/`backlog`/`in_flight` may be called from any thread
(`pace_with` before `start`); the workers run on the runner's loop; the outbox
connection on its own thread (`outbox_thread.py`), which commits the outcomes that
arrive together in one transaction.

(Over 400 lines: one class whose parts — attempt, reconcile, expire, commit an
outcome — share the in-flight sets and the loop, and read best together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from omniconsole.adapters.channels.ports import ChannelAdapter, PacedAdapter, ReconcilingAdapter
from omniconsole.adapters.channels.resilience import CIRCUIT_OPEN, LimiterFactory
from omniconsole.adapters.channels.settings import DeliverySettings
from omniconsole.adapters.store.base import OutboxQueue
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.clock import Clock
from omniconsole.domain.messages import DeliveryResult, Handoff, OutboundMessage, Recipient
from omniconsole.domain.records import (
    OUTBOX_EXPIRED,
    OUTBOX_FAILED,
    OUTBOX_RECONCILING,
    OUTBOX_RETRYING,
    OUTBOX_SENT,
    OUTBOX_UNCONFIRMED,
    OutboxEntry,
    OutboxRow,
    OutboxUpdate,
    outbox_stamp,
    result_from_json,
    result_json,
)
from omniconsole.domain.timeutil import parse_timestamp
from omniconsole.engine.outbox_thread import OutboxThread

__all__ = ["DeliveryRunner", "Outcome", "outbound_message"]

log = logging.getLogger("omniconsole.delivery")

T = TypeVar("T")

#: the channels a provider delivers (in-app is written by the engine itself)
PROVIDER_CHANNELS = tuple(c for c in Channel if c is not Channel.IN_APP)
#: waiting sends expired per query when their maximum age has passed
_EXPIRE_BATCH = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final outcome, committed to the outbox, for the live engine to settle."""

    entry: OutboxEntry
    update: OutboxUpdate
    result: DeliveryResult


def outbound_message(entry: OutboxEntry) -> OutboundMessage:
    """The message an outbox entry asks its adapter to deliver."""
    line = entry.line
    handoff = entry.handoff
    return OutboundMessage(
        message_id=entry.message_id,
        channel=Channel(entry.channel),
        category=Category(entry.category),
        journey=str(line["journey"]),
        step=str(line["step"]),
        recipient=Recipient(**entry.recipient),
        subject=entry.subject,
        text=entry.text,
        html=entry.html,
        handoff=None if handoff is None else Handoff(**handoff),
    )


class DeliveryRunner:
    """Delivers the outbox (see the module docstring)."""

    def __init__(
        self,
        adapters: Mapping[Channel, ChannelAdapter],
        open_outbox: Callable[[], OutboxQueue],
        settings: DeliverySettings,
        clock: Clock,
        on_final: Callable[[Outcome], None],
        *,
        on_attempt: Callable[[str, str, float], None] | None = None,
        poll: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.adapters = dict(adapters)
        self.settings = settings
        self.clock = clock
        self.on_final = on_final
        self.on_attempt = on_attempt
        self.poll = poll
        self._rand = rand
        self._db = OutboxThread(open_outbox)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._stopping = asyncio.Event()
        self._wake: dict[Channel, asyncio.Event] = {c: asyncio.Event() for c in PROVIDER_CHANNELS}
        self._flight: dict[Channel, set[str]] = {c: set() for c in PROVIDER_CHANNELS}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconcile_tries: dict[str, int] = {}
        self._backlog: dict[str, dict[str, Any]] = {}
        self._drain = 0.0
        self._error: BaseException | None = None

    # ---- any thread ----

    def start(self) -> None:
        """Open the outbox, settle what a crash left unsettled, start delivering."""
        self._db.start()
        try:
            for row in self._db.call(lambda o: o.unsettled()).result():
                self.on_final(Outcome(row.entry, _final_update(row), _final_result(row)))
            self._backlog = self._db.call(lambda o: o.backlog()).result()
        except BaseException:
            self._db.close()
            raise
        self._thread.start()

    def pace_with(self, make: LimiterFactory) -> list[str]:
        """Pace every adapter's provider calls with limiters from `make` instead of the
        adapter's own token buckets (`PacedAdapter`: `serve --ray` shares one bucket per
        provider and channel across the cluster); the names of the adapters paced so.
        Call before `start`."""
        paced: list[str] = []
        for adapter in {id(a): a for a in self.adapters.values()}.values():
            if isinstance(adapter, PacedAdapter):
                adapter.pace_with(make)
                paced.append(adapter.name)
        return paced

    def wake(self) -> None:
        """New rows were committed: look for due sends now rather than at the next poll."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                self._loop.call_soon_threadsafe(self._wake_all)

    def heard_of(self, message_id: str) -> None:
        """The provider reported on this send (a status callback): if it waits in
        `reconciling`, ask the provider now rather than at its backoff, so a callback
        that proves the send landed settles it at once. Any thread."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop just closed
                self._loop.call_soon_threadsafe(self._hasten, message_id)

    def _hasten(self, message_id: str) -> None:
        task = asyncio.ensure_future(self._hasten_now(message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hasten_now(self, message_id: str) -> None:
        now = outbox_stamp(self._now())
        try:
            hastened = await self._call(lambda o: o.hasten(message_id, now))
        except Exception:  # the send is asked about at its backoff anyway
            log.exception("hastening the reconciliation of %s failed", message_id)
            return
        if hastened:
            self._reconcile_tries.pop(message_id, None)
            self._wake_all()

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Take no new sends; give those in flight `drain_seconds` to answer (their
        outcomes are committed and handed to `on_final`); cancel the rest (they stay
        waiting and go after a restart); close the adapters."""
        self._drain = drain_seconds
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join()
        self._db.close()

    @property
    def alive(self) -> bool:
        """Whether the runner is delivering."""
        return self._thread.is_alive()

    def in_flight(self) -> int:
        """Sends handed to providers that have not answered yet."""
        return sum(len(f) for f in self._flight.values())

    def backlog(self) -> dict[str, dict[str, Any]]:
        """Per channel: waiting sends by state and the oldest decision (refreshed every
        second or so)."""
        return self._backlog

    # ---- the runner's loop ----

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by `alive` and the engine's health
            self._error = exc
            log.exception("the delivery runner stopped")
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _main(self) -> None:
        background = [asyncio.create_task(self._worker(c)) for c in PROVIDER_CHANNELS]
        background.append(asyncio.create_task(self._expire_loop()))
        background.append(asyncio.create_task(self._observe_loop()))
        try:
            await self._stopping.wait()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=self._drain)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._close_adapters()

    async def _close_adapters(self) -> None:
        seen: set[int] = set()
        for adapter in self.adapters.values():
            if id(adapter) in seen:
                continue
            seen.add(id(adapter))
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing the %s adapter failed", adapter.name)

    async def _call(self, fn: Callable[[OutboxQueue], T]) -> T:
        return await asyncio.wrap_future(self._db.call(fn))

    def _now(self) -> datetime:
        return self.clock.now()

    def _limit(self, channel: Channel, adapter: ChannelAdapter | None) -> int:
        """Sends allowed in flight now: none while the circuit is open, one while it
        probes or the provider has just failed, else the configured concurrency."""
        health = getattr(adapter, "health", None)
        state = health().get(channel, "up") if health is not None else "up"
        if state == "circuit_open":
            return 0
        if state == "degraded":
            return 1
        return self.settings.concurrency

    async def _worker(self, channel: Channel) -> None:
        adapter = self.adapters.get(channel)
        flight = self._flight[channel]
        wake = self._wake[channel]
        while not self._stopping.is_set():
            wake.clear()
            free = self._limit(channel, adapter) - len(flight)
            rows: list[OutboxRow] = []
            if free > 0:
                now = outbox_stamp(self._now())
                due = partial(_due, channel=channel.value, now=now, limit=free, skip=set(flight))
                try:
                    rows = await self._call(due)
                except Exception:
                    log.exception("reading the %s outbox failed; retrying", channel)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll):
                        await wake.wait()
                continue
            for row in rows:
                flight.add(row.entry.message_id)
                task = asyncio.create_task(self._deliver(channel, adapter, row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, channel: Channel, adapter: ChannelAdapter | None, row: OutboxRow
    ) -> None:
        entry = row.entry
        try:
            if adapter is None:
                result = DeliveryResult(
                    ok=False,
                    error_code="not_configured",
                    permanent=True,
                    detail=f"{channel} is not configured",
                )
                await self._final(row, OUTBOX_FAILED, result, row.attempts, row.attempted_at)
                if self.on_attempt is not None:
                    self.on_attempt(str(channel), OUTBOX_FAILED, 0.0)
                return
            try:
                message = outbound_message(entry)
            except (KeyError, TypeError, ValueError) as exc:
                result = DeliveryResult(
                    ok=False, error_code="invalid_message", permanent=True, detail=repr(exc)
                )
                await self._final(row, OUTBOX_FAILED, result, row.attempts, row.attempted_at)
                return
            if row.status == OUTBOX_RECONCILING and isinstance(adapter, ReconcilingAdapter):
                await self._reconcile(row, adapter, message)
                return
            await self._attempt(channel, adapter, row, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not lose the send: it waits and goes again
            log.exception("delivering %s failed", entry.message_id)
            with contextlib.suppress(Exception):
                await self._wait_again(row, OUTBOX_RETRYING, row.attempts, f"internal: {exc!r}")
        finally:
            self._flight[channel].discard(entry.message_id)
            self._wake[channel].set()

    async def _attempt(
        self, channel: Channel, adapter: ChannelAdapter, row: OutboxRow, message: OutboundMessage
    ) -> None:
        attempted_at = outbox_stamp(self._now())
        started = time.monotonic()
        try:
            result = await adapter.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug: the same message fails the same way
            result = DeliveryResult(
                ok=False, error_code="adapter_error", permanent=True, detail=repr(exc)
            )
        seconds = time.monotonic() - started
        refused = result.error_code == CIRCUIT_OPEN  # the breaker made no call
        attempts = row.attempts + (0 if refused else 1)
        if result.ok:
            await self._final(row, OUTBOX_SENT, result, attempts, attempted_at)
            status = OUTBOX_SENT
        elif result.ambiguous and isinstance(adapter, ReconcilingAdapter):
            due = self._now() + timedelta(seconds=self.settings.reconcile_after)
            await self._commit(row, OUTBOX_RECONCILING, attempts, due, _error(result), attempted_at)
            status = OUTBOX_RECONCILING
        elif result.ambiguous:
            unconfirmed = DeliveryResult(
                ok=False,
                error_code="unconfirmed",
                permanent=True,
                detail=f"{_error(result)}; not sent again: the provider may have it",
            )
            await self._final(row, OUTBOX_UNCONFIRMED, unconfirmed, attempts, attempted_at)
            status = OUTBOX_UNCONFIRMED
        elif result.permanent:
            await self._final(row, OUTBOX_FAILED, result, attempts, attempted_at)
            status = OUTBOX_FAILED
        else:
            delay = 1.0 if refused else self._backoff(attempts)
            due = self._now() + timedelta(seconds=delay)
            await self._commit(row, OUTBOX_RETRYING, attempts, due, _error(result), attempted_at)
            status = OUTBOX_RETRYING
        if self.on_attempt is not None and not refused:
            self.on_attempt(str(channel), status, seconds)

    async def _reconcile(
        self, row: OutboxRow, adapter: ReconcilingAdapter, message: OutboundMessage
    ) -> None:
        since = parse_timestamp(row.attempted_at or row.entry.at)
        try:
            found = await adapter.reconcile(message, since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            found = DeliveryResult(ok=False, error_code="reconcile_failed", detail=repr(exc))
        mid = row.entry.message_id
        if found is None:  # the provider has no such message: now it may go again
            self._reconcile_tries.pop(mid, None)
            await self._wait_again(
                row,
                OUTBOX_RETRYING,
                row.attempts,
                f"{row.last_error}; reconciled: the provider has no such message",
                delay=0.0,
            )
        elif found.ok:
            self._reconcile_tries.pop(mid, None)
            await self._final(row, OUTBOX_SENT, found, row.attempts, row.attempted_at)
        else:
            tries = self._reconcile_tries[mid] = self._reconcile_tries.get(mid, 0) + 1
            await self._wait_again(
                row, OUTBOX_RECONCILING, row.attempts, _error(found), delay=self._backoff(tries)
            )

    async def _expire_loop(self) -> None:
        """Sends still waiting at their category's maximum age end `expired`."""
        while True:
            try:
                await self._expire_due()
            except Exception:
                log.exception("expiring old sends failed; retrying")
            await asyncio.sleep(max(self.poll, 1.0))

    async def _expire_due(self) -> None:
        now = self._now()
        for category in Category:
            age = self.settings.max_age_of(category.value)
            cutoff = outbox_stamp(now - age)
            while True:
                old = partial(_older_than, category=category.value, cutoff=cutoff)
                rows = await self._call(old)
                for row in rows:
                    channel = Channel(row.entry.channel)
                    flight = self._flight.get(channel)
                    if flight is not None and row.entry.message_id in flight:
                        continue  # its attempt decides; expiry waits for the next sweep
                    result = DeliveryResult(
                        ok=False,
                        error_code="expired",
                        permanent=True,
                        detail=f"not delivered within {age}; last error: {row.last_error or 'none'}",
                    )
                    await self._final(row, OUTBOX_EXPIRED, result, row.attempts, row.attempted_at)
                if len(rows) < _EXPIRE_BATCH:
                    break

    async def _observe_loop(self) -> None:
        """Refresh the backlog `backlog()` reports (a count over an index: cheap, but not
        free with a large backlog, so not on every /healthz)."""
        while True:
            with contextlib.suppress(Exception):
                self._backlog = await self._call(lambda o: o.backlog())
            await asyncio.sleep(max(self.poll, 1.0))

    # ---- outcomes ----

    def _backoff(self, attempts: int) -> float:
        """Full-jitter-ish exponential backoff: half to all of base * 2^(attempts-1)."""
        ceiling = min(
            self.settings.retry_max, self.settings.retry_base * 2.0 ** max(0, attempts - 1)
        )
        return ceiling * (0.5 + 0.5 * self._rand())

    async def _commit(
        self,
        row: OutboxRow,
        status: str,
        attempts: int,
        due: datetime | None,
        last_error: str,
        attempted_at: str,
        provider_id: str | None = None,
        result: DeliveryResult | None = None,
    ) -> OutboxUpdate:
        update = OutboxUpdate(
            message_id=row.entry.message_id,
            status=status,
            attempts=attempts,
            next_attempt_at="" if due is None else outbox_stamp(due),
            last_error=last_error,
            provider_id=provider_id,
            attempted_at=attempted_at,
            updated_at=outbox_stamp(self._now()),
            result="" if result is None else result_json(result),
        )
        await asyncio.wrap_future(self._db.commit(update))
        return update

    async def _wait_again(
        self,
        row: OutboxRow,
        status: str,
        attempts: int,
        last_error: str,
        delay: float | None = None,
    ) -> None:
        seconds = self._backoff(max(1, attempts)) if delay is None else delay
        due = self._now() + timedelta(seconds=seconds)
        await self._commit(row, status, attempts, due, last_error, row.attempted_at)

    async def _final(
        self, row: OutboxRow, status: str, result: DeliveryResult, attempts: int, attempted_at: str
    ) -> None:
        """Commit a final outcome, then hand it to the engine (in that order: a crash
        between leaves it committed and unsettled, and `start` hands it over again)."""
        last_error = "" if result.ok else _error(result)
        update = await self._commit(
            row, status, attempts, None, last_error, attempted_at, result.provider_id, result
        )
        self.on_final(Outcome(row.entry, update, result))


def _due(
    outbox: OutboxQueue, channel: str, now: str, limit: int, skip: set[str]
) -> list[OutboxRow]:
    return outbox.due(channel, now, limit, skip)


def _older_than(outbox: OutboxQueue, category: str, cutoff: str) -> list[OutboxRow]:
    return outbox.older_than(category, cutoff, _EXPIRE_BATCH)


def _error(result: DeliveryResult) -> str:
    code = result.error_code or "error"
    return f"{code}: {result.detail}" if result.detail else code


def _final_update(row: OutboxRow) -> OutboxUpdate:
    return OutboxUpdate(
        message_id=row.entry.message_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        provider_id=row.provider_id,
        attempted_at=row.attempted_at,
        updated_at=row.updated_at,
        result=row.result,
    )


def _final_result(row: OutboxRow) -> DeliveryResult:
    """The result a committed final row stands for."""
    result = result_from_json(row.result)
    if result is not None:
        return result
    if row.status == OUTBOX_SENT:
        return DeliveryResult(ok=True, provider_id=row.provider_id)
    code, _, detail = row.last_error.partition(": ")
    return DeliveryResult(ok=False, error_code=code or "error", permanent=True, detail=detail)
