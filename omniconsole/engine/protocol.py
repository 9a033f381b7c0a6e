"""The `Engine`: what every driver (replay, serve, demo, `replay --tui`) talks to.

Two implementations: `omniconsole.actors.runtime.ActorEngine`, the actor system in
this process (profile shards, the fatigue governor, a dispatcher per channel, the
store writer), and `omniconsole.engine.partitioned.PartitionedEngine`, one such
system per partition process, each for a share of the customers.

A driver feeds accepted lines with `add`, hands them over with `apply` (firing every
timer due before the horizon), and commits consistent cuts with `checkpoint`. Nothing
is durable until a checkpoint commits; a restarted engine continues from the last one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from omniconsole.domain.events import Event
from omniconsole.domain.records import StoreRecord


@dataclass(frozen=True, slots=True)
class Cut:
    """A consistent point to commit: the run's facts for the store's `meta`, the clock,
    and how many profiles may stay in memory after it: at most `max_active`, or, with
    `budget`, at least that many and more while a shard knows few customers
    (`omniconsole.actors.profile_shard.profiles_kept`)."""

    meta: Mapping[str, str]
    now: datetime
    max_active: int
    budget: bool = False


class Engine(Protocol):
    """The engine behind one store. Methods are called from one driver thread."""

    def add(self, line: int, event: Event, at: datetime, late: bool, raw: bytes) -> None:
        """Take one accepted event (log line `line`, applied at clock time `at`; `raw`
        is the line as read) into the batch being built."""

    def write(self, records: Sequence[StoreRecord]) -> None:
        """Records the driver itself writes (rejects, adapter health), committed with the
        next checkpoint."""

    def apply(self, horizon: datetime | None) -> None:
        """Apply the batch, then every timer due before `horizon` (all when None). May
        return before it is applied; `drain` waits."""

    def drain(self) -> None:
        """Wait until everything handed over so far is applied."""

    def next_due(self) -> datetime | None:
        """The earliest pending timer (may be stale: then firing it is a no-op)."""

    def checkpoint(self, cut: Cut) -> None:
        """Commit everything applied so far, with `cut.meta`, as one transaction."""

    def meta(self) -> dict[str, str]:
        """The store's committed run facts (checkpoint line, clock, counters, status)."""

    def stop(self) -> None:
        """Stop; what was not committed is rolled back. Never raises."""


class DeliveringEngine(Engine, Protocol):
    """An engine that sends for real (`serve`): it stages sends in the outbox, and the
    live driver settles their outcomes (see `omniconsole.engine.delivery`)."""

    def release(self, customer: str, message_id: str, at: str, channel: str) -> None:
        """A capped send failed at its provider: it no longer counts against the caps."""
