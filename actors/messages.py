"""Every message of the engine: between its actors, and between a replay and its partitions.

Frozen dataclasses, one per kind of request; `(ask)` marks those answered with a value.

    profile shards ──DecideBatch──▶ governor ──DispatchBatch──▶ channel dispatchers
          ▲                            │ ▲
          └────────── Decided ─────────┘ └── Release (the live engine: a failed send)
                   every actor ──Rows──▶ store writer

A partitioned replay drives each partition process with the `Partition*` requests
(see `omniconsole.engine.partition_worker`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka

from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.governor import Decision, SendRequest
from omniconsole.domain.records import StoreRecord

# ---- profile shards ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyBatch:
    """Apply these events (already in time order) and fire timers due before `horizon`."""

    batch_id: int
    events: Sequence[TimedEvent]
    horizon: datetime | None
    done: Future[int]


@dataclass(frozen=True, slots=True)
class Decided:
    """The governor's decisions, in the order of the requests of batch `token`."""

    token: int
    decisions: Sequence[Decision]


@dataclass(frozen=True, slots=True)
class FlushState:
    """Send the store every profile changed since the last flush (ask; answers the count)."""

    now: datetime


@dataclass(frozen=True, slots=True)
class Passivate:
    """Drop clean profiles beyond `max_active` (with `budget`: beyond what
    `profiles_kept` allows), least recently used first."""

    max_active: int
    budget: bool = False


@dataclass(frozen=True, slots=True)
class PreloadTimers:
    """After a restart: customers with pending timers, and when the earliest is due."""

    heads: Sequence[tuple[str, datetime]]


@dataclass(frozen=True, slots=True)
class Quarantined:
    """After a restart: customers quarantined before it (customer -> reason); their
    events and timers are not applied."""

    customers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NextDue:
    """Answer the earliest timer due on this shard, or None (ask)."""


# ---- the fatigue governor ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecideBatch:
    """Send requests for the governor; answers go back to `reply_to` as `Decided`."""

    token: int
    requests: Sequence[SendRequest]
    reply_to: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class LoadUsage:
    """After a restart: capped sends (customer, at, channel) still inside the cap windows."""

    rows: Sequence[tuple[str, datetime, str]]


@dataclass(frozen=True, slots=True)
class Release:
    """A capped send failed at the provider: it no longer counts against the caps.

    Usage is kept as (time, channel): `at` and `channel` name the one entry to drop
    (another capped send may have gone out at the same instant on another channel)."""

    customer: str
    message_id: str
    at: str
    channel: str


@dataclass(frozen=True, slots=True)
class ForgetUsageBefore:
    """Forget cap usage that no window reaching back from `now` can count any more."""

    now: datetime


# ---- channel dispatchers -------------------------------------------------------------


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


# ---- the store writer ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    """Records for the store, all of one type (the store knows its table)."""

    records: Sequence[StoreRecord]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Commit everything received so far, with these meta facts (ask)."""

    meta: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StoreCall:
    """Run `fn(store)` (a coroutine function) on the writer's loop and answer its result (ask)."""

    fn: Callable[[Any], Any]


# ---- any actor -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sync:
    """Answer once every message received before this one is handled (ask)."""


# ---- a replay's partition processes --------------------------------------------------

#: one line of the log for a partition: (line number, raw bytes, applied-at if late, µs)
PartitionLine = tuple[int, bytes, int | None]


@dataclass(frozen=True, slots=True)
class PartitionApply:
    """Apply these lines of the partition's customers, then timers due before `horizon`
    (µs since the epoch; None: all). Not answered: the pipe's read-ahead is the
    back-pressure."""

    lines: Sequence[PartitionLine]
    horizon: int | None


@dataclass(frozen=True, slots=True)
class PartitionDrain:
    """Answer once everything sent so far is applied (ask)."""


@dataclass(frozen=True, slots=True)
class PartitionNextDue:
    """Answer the earliest pending timer, µs since the epoch, or None (ask)."""


@dataclass(frozen=True, slots=True)
class PartitionCheckpoint:
    """Commit the partition's part at this cut (ask)."""

    meta: Mapping[str, str]
    now: int  # µs since the epoch
    max_active: int
    budget: bool = False


@dataclass(frozen=True, slots=True)
class PartitionStop:
    """Stop; what was not committed is rolled back (ask)."""


PartitionRequest = (
    PartitionApply | PartitionDrain | PartitionNextDue | PartitionCheckpoint | PartitionStop
)


@dataclass(frozen=True, slots=True)
class PartitionReady:
    """A partition started; it had committed the log up to `checkpoint_line`."""

    checkpoint_line: int


@dataclass(frozen=True, slots=True)
class PartitionDone:
    """The answer to an ask: `value` (None for drain, checkpoint and stop)."""

    value: int | None = None


@dataclass(frozen=True, slots=True)
class PartitionError:
    """The partition failed and is exiting: `text` says why, `detail` is the traceback."""

    text: str
    detail: str = ""


PartitionAnswer = PartitionReady | PartitionDone | PartitionError
