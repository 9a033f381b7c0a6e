"""The `Store` seam: where a run's data lives, how the engine writes it, how tools read it.

A `Store` names a place (one SQLite file with its partition parts beside it, or a
schema of a PostgreSQL database with its parts' schemas beside it) and hands out the
three ways in:

- `writer()` — the engine's one `StoreWriter` (async: it runs on the store writer
  actor's loop). Everything added between two checkpoints commits as one transaction.
- `profiles()` — a `ProfileSource` that activates passivated profiles (sync; the
  profile shard's thread), reading beside the writer.
- `reader()` — a `StoreReader` over the whole store, every part seen as one (sync, any
  one thread): the replay's exports, the live service's lookups, `omniconsole inbox`.
- `outbox()` — an `OutboxQueue` (sync, one thread): the live delivery runner's sends
  due and their outcomes, committed beside the writer's checkpoints.

The console's own read side lives in `omniconsole.adapters.store.console` (queries in
`console_queries`, running counts in `console_aggregates`). Records cross
this seam as the typed records of `omniconsole.domain.records`; only an implementation
maps them to tables.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from omniconsole.adapters.store.progress import Progress
from omniconsole.domain.records import (
    EventRecord,
    InstanceRecord,
    LedgerRecord,
    OutboxEntry,
    OutboxRow,
    OutboxUpdate,
    StoreRecord,
)


class StoreError(RuntimeError):
    """The store cannot be opened, read or written; the message says which and why."""


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    """The ledger's counts for the report (SPEC §6)."""

    #: channel (None: no channel chosen) -> outcome -> decisions
    channels: Mapping[str | None, Mapping[str, int]]
    #: suppression reason -> count, sorted by reason
    reasons: Mapping[str, int]
    #: sent messages that were handoffs
    handoffs: int
    #: journey -> (entered, converted)
    journeys: Mapping[str, tuple[int, int]]


class Quarantined(NamedTuple):
    """Why and since when a customer's events are no longer applied."""

    since: str
    reason: str


@dataclass(frozen=True, slots=True)
class LedgerTail:
    """A decision written after the last one seen (the live service's metrics)."""

    id: int
    channel: str | None
    outcome: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One message in a customer's in-app inbox."""

    at: str
    journey: str
    step: str
    subject: str
    body: str
    read: bool


class StoreWriter(Protocol):
    """The engine's one writer. Call from one thread, on one event loop."""

    async def open(self, *, fresh: bool) -> None:
        """Open, creating the schema; `fresh` empties the store first."""

    async def close(self) -> None:
        """Close; what was not committed is rolled back."""

    async def add(self, records: Sequence[StoreRecord]) -> None:
        """Queue records, all of one type, for the open checkpoint."""

    async def checkpoint(self, meta: Mapping[str, str]) -> None:
        """Write everything queued and `meta`, and commit them as one transaction."""

    async def meta(self) -> dict[str, str]:
        """The committed run facts."""

    async def cap_usage_since(self, since: datetime) -> list[tuple[str, str, str]]:
        """(customer, at, channel) of capped sends at or after `since`, oldest first."""

    async def timer_heads(self) -> list[tuple[str, str]]:
        """(customer, earliest due) for every customer with pending timers."""

    async def quarantined(self) -> dict[str, str]:
        """customer -> reason, for every customer whose events are no longer applied."""


class ProfileSource(Protocol):
    """Reads passivated profiles (sync, beside the writer)."""

    def load(self, customer: str) -> dict[str, Any] | None:
        """The stored profile JSON of `customer`, or None when it has none."""

    def load_state(self, customer: str) -> str | None:
        """The stored profile of `customer` as the JSON text it was written as, or None
        (for `Profile.loads`, which decodes it straight into the profile)."""

    def close(self) -> None:
        """Release the connection."""


class StoreReader(Protocol):
    """Read-only queries over the whole store (every part). Use from one thread."""

    def meta(self) -> dict[str, str]:
        """The committed run facts."""

    def export_ledger(self, out: Path) -> int:
        """Write the ledger in its total order (time, customer, sequence); line count."""

    def export_rejects(self, out: Path) -> int:
        """Write the rejected lines (line, reason, raw) in log order; their count."""

    def ledger_summary(self) -> LedgerSummary:
        """The counts the report is built from."""

    def message_ids(self, up_to_line: int | None = None) -> set[str]:
        """Message ids of the applied events (of log lines up to `up_to_line`)."""

    def has_message_id(self, message_id: str, before_line: int | None = None) -> bool:
        """Whether an applied event (of a log line before `before_line`) has this
        message id (exact; a scan: for the rare digest hit of the duplicate check)."""

    def customers_for_phone(self, phone: str) -> list[str]:
        """Every customer whose profile holds `phone`."""

    def pending_outbox(self) -> list[OutboxEntry]:
        """Sends decided and committed and not delivered yet (the backlog), oldest first."""

    def ledger_since(self, last_id: int) -> list[LedgerTail]:
        """Decisions written after `last_id`, in the order written."""

    def inbox(self, customer: str) -> list[InboxItem]:
        """The customer's in-app inbox, newest first."""

    def quarantined(self) -> dict[str, Quarantined]:
        """customer -> since and reason, for every quarantined customer, oldest first."""

    def decision_count(self) -> int:
        """How many decisions are committed (from the engine's counts: no ledger scan)."""

    def instances(self, journeys: Sequence[str]) -> Iterator[InstanceRecord]:
        """Every instance of `journeys` (the report splits them by control group)."""

    def customer_events(self, customer: str) -> list[EventRecord]:
        """The customer's applied events, in the order applied (`omniconsole explain`)."""

    def customer_ledger(self, customer: str) -> list[LedgerRecord]:
        """The customer's ledger records in the ledger's order."""

    def message_customer(self, message_id: str) -> str | None:
        """The customer of the decision with `message_id`, if there is one."""

    def close(self) -> None:
        """Release the connection."""


class OutboxQueue(Protocol):
    """The live outbox as the delivery runner sees it, on a connection of its own: due
    sends, and each attempt's outcome committed at once. Synchronous; one thread."""

    def due(self, channel: str, now: str, limit: int, exclude: Collection[str]) -> list[OutboxRow]:
        """Up to `limit` waiting sends of `channel` due at `now` (ISO UTC), not in
        `exclude`; transactional first, then the longest waiting."""

    def older_than(self, category: str, decided_before: str, limit: int) -> list[OutboxRow]:
        """Waiting sends of `category` decided before `decided_before`."""

    def unsettled(self) -> list[OutboxRow]:
        """Final outcomes whose ledger line was never committed (a crash between)."""

    def update(self, updates: Sequence[OutboxUpdate]) -> None:
        """Commit these outcomes, in one transaction."""

    def hasten(self, message_id: str, now: str) -> bool:
        """A `reconciling` send the provider has since reported on (a status callback)
        is due at `now`, so the provider is asked at once; whether one was."""

    def backlog(self) -> dict[str, dict[str, Any]]:
        """Per channel: sends waiting in each state (`OUTBOX_WAITING`) and `oldest`."""

    def close(self) -> None:
        """Release the connection."""


class Store(Protocol):
    """Where a run's data lives. Picklable: partition processes receive their part."""

    def describe(self) -> str:
        """Where it is, for messages (a path; never a password)."""

    def exists(self) -> bool:
        """Whether a store is there at all."""

    def writer(self) -> StoreWriter:
        """The engine's writer of this store (not opened yet)."""

    def profiles(self) -> ProfileSource:
        """A reader of passivated profiles."""

    def reader(self) -> StoreReader:
        """Read-only queries over the whole store, every part seen as one."""

    def outbox(self) -> OutboxQueue:
        """The live outbox, on a connection of its own (open the writer first)."""

    def part(self, index: int, count: int) -> Store:
        """The store of partition `index` of `count`."""

    def max_partitions(self) -> int:
        """The most partitions a run in this store can have."""

    def stored_partitions(self) -> int:
        """How many partitions the run in this store was written with (1: none)."""

    def parts_meta(self, count: int) -> dict[str, str]:
        """The meta facts that name `count` parts (committed by the main store)."""

    def remove_parts(self) -> None:
        """Forget a previous run's parts (a fresh run must not read them as its own)."""

    def publish_progress(self, progress: Progress) -> None:
        """Say how far a running replay has read, outside its transactions (a console
        shows it beside the committed cut); never raises."""

    def forget_progress(self) -> None:
        """The replay is over: there is no progress to show any more."""
