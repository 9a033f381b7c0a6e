"""Messages between the actors: frozen dataclasses, one per request kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka

from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.governor import Decision, SendRequest


@dataclass(frozen=True, slots=True)
class ApplyBatch:
    """Apply these events (already in time order) and fire timers due before `horizon`."""

    batch_id: int
    events: Sequence[TimedEvent]
    horizon: datetime | None
    done: Future[int]


@dataclass(frozen=True, slots=True)
class DecideBatch:
    """Send requests for the governor; answers go back to `reply_to` as `Decided`."""

    token: int
    requests: Sequence[SendRequest]
    reply_to: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Decided:
    """The governor's decisions, in the order of the requests of batch `token`."""

    token: int
    decisions: Sequence[Decision]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One send the governor allowed: deliver it on `decision.channel`."""

    request: SendRequest
    decision: Decision
    capped: bool


@dataclass(frozen=True, slots=True)
class DispatchBatch:
    """Sends for one channel dispatcher."""

    items: Sequence[Dispatch]


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows for one store table (see adapters.store_sqlite.INSERT)."""

    table: str
    rows: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Commit everything received so far, with these meta facts (ask)."""

    meta: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoreCall:
    """Run `fn(store)` (a coroutine function) on the writer's loop and answer its result (ask)."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Sync:
    """Answer once every message received before this one is handled (ask)."""


@dataclass(frozen=True, slots=True)
class FlushState:
    """Send the store every profile changed since the last flush (ask; answers the count)."""

    now: datetime


@dataclass(frozen=True, slots=True)
class Passivate:
    """Drop clean profiles beyond `max_active`, least recently used first."""

    max_active: int


@dataclass(frozen=True, slots=True)
class PreloadTimers:
    """After a restart: customers with pending timers, and when the earliest is due."""

    heads: Sequence[tuple[str, datetime]]


@dataclass(frozen=True, slots=True)
class LoadUsage:
    """After a restart: capped sends (customer, at, channel) still inside the cap windows."""

    rows: Sequence[tuple[str, datetime, str]]


@dataclass(frozen=True, slots=True)
class UseGovernor:
    """Tell a dispatcher which governor releases the caps of its failed sends."""

    governor: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class NextDue:
    """Answer the earliest timer due on this shard, or None (ask)."""
