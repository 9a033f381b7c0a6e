"""What one poll of the store returns to the console, and how it is gathered.

`collect` runs on the console's poll worker thread (never on the Textual event loop):
it reads one committed cut of the store, takes the status line and only what the
visible view needs from that same cut, and never raises — a store that is missing,
being created or broken becomes a `Snapshot` saying so. When nothing was committed
since the last poll and the view asks for the same thing, the last snapshot is
returned as it is (no query runs). No textual import here.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.console import ConsoleCut, ConsoleReader
from omniconsole.adapters.store.console_rows import (
    CapsOverview,
    ChannelStats,
    CustomerMatch,
    CustomerRecord,
    DecisionFilter,
    DecisionPage,
    JourneyStats,
    OutcomesOverview,
    StoreStatus,
)
from omniconsole.adapters.store.parts import PartsError
from omniconsole.adapters.store.progress import Progress
from omniconsole.engine.explain import ExplainError, explain_customer_at

__all__ = [
    "CustomerLookup",
    "PageRequest",
    "PollRequest",
    "Snapshot",
    "SnapshotCollector",
    "ViewName",
]

ViewName = str  # "journeys", "handoffs", "caps", "channels", "customer", "decisions",
# "outcomes"

#: decisions per page of the Decisions and Handoffs views
PAGE_ROWS = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page of decisions: the filter, and the key the page starts after (None: newest)."""

    filter: DecisionFilter = field(default_factory=DecisionFilter)
    after: tuple[int, str, int] | None = None


@dataclass(frozen=True, slots=True)
class PollRequest:
    """What the console is showing, so the poll fetches only that.

    Written by the event loop, read by the poll thread (replaced whole, never mutated).
    """

    view: ViewName = "journeys"
    customer_query: str | None = None
    decisions: PageRequest = field(default_factory=PageRequest)
    handoffs: PageRequest = field(
        default_factory=lambda: PageRequest(DecisionFilter(handoffs=True))
    )


@dataclass(frozen=True, slots=True)
class CustomerLookup:
    """The result of looking up `query`: the matches, and the record when exactly one."""

    query: str
    matches: tuple[CustomerMatch, ...]
    record: CustomerRecord | None
    #: `omniconsole explain` of the customer (its JSON data), when one was found
    explanation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent look at the store (one committed cut) for the visible view."""

    seq: int
    request: PollRequest
    status: StoreStatus
    journeys: tuple[JourneyStats, ...] = ()
    page: DecisionPage | None = None
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    handoff_pairs: tuple[tuple[str, int], ...] = ()
    caps: CapsOverview | None = None
    channels: tuple[ChannelStats, ...] = ()
    throughput: tuple[tuple[str, float], ...] = ()
    customer: CustomerLookup | None = None
    outcomes: OutcomesOverview | None = None
    progress: Progress | None = None
    error: str | None = None


@dataclass(slots=True)
class SnapshotCollector:
    """Gathers snapshots from one reader; keeps the history throughput needs.

    Used by one thread (the poll worker).
    """

    reader: ConsoleReader
    seq: int = 0
    last: Snapshot | None = None
    #: snapshots of this store version, by request: a view switched back to, with
    #: nothing committed since, is shown without a query
    _cache: dict[PollRequest, Snapshot] = field(default_factory=dict)
    _sent_history: deque[tuple[float, dict[str, int]]] = field(
        default_factory=lambda: deque(maxlen=40)
    )

    def cached(self, request: PollRequest) -> Snapshot | None:
        """The snapshot of `request` taken at the store's last known version, if any
        (may be read from another thread: a dict lookup)."""
        return self._cache.get(request)

    def collect(self, request: PollRequest) -> Snapshot:
        """Read what `request.view` needs from one cut; errors become part of the snapshot."""
        progress = self.reader.progress()
        if self.reader.changed():
            self._cache.clear()
        cached = self._cache.get(request)
        if cached is not None and request.view != "channels":  # throughput is per second
            if progress != cached.progress:
                cached = self._cache[request] = replace(cached, progress=progress)
            self.last = cached
            return cached
        self.seq += 1
        snapshot = replace(self._collect(request), progress=progress)
        if snapshot.error is None and snapshot.status.ready:
            self._cache[request] = snapshot
        self.last = snapshot
        return snapshot

    def _collect(self, request: PollRequest) -> Snapshot:
        where = self.reader.where
        if not self.reader.connection.exists():
            self.reader.close()
            return Snapshot(self.seq, request, StoreStatus(where, "missing"))
        try:
            with self.reader.read() as cut:
                status = cut.status()
                if not status.ready:
                    return Snapshot(self.seq, request, status)
                try:
                    return self._collect_ready(cut, request, status)
                except sqlite3.Error as exc:
                    return Snapshot(self.seq, request, status, error=f"store read failed: {exc}")
        except (PartsError, sqlite3.Error):
            return Snapshot(self.seq, request, self.reader.status())

    def _collect_ready(
        self, cut: ConsoleCut, request: PollRequest, status: StoreStatus
    ) -> Snapshot:
        view = request.view
        base = Snapshot(self.seq, request, status)
        if view == "journeys":
            return replace(base, journeys=cut.journeys())
        if view in ("decisions", "handoffs"):
            page = request.decisions if view == "decisions" else request.handoffs
            pairs = tuple(cut.handoff_pairs().items()) if view == "handoffs" else ()
            return replace(
                base,
                page=cut.decisions(page.filter, page.after, PAGE_ROWS),
                vocabulary=cut.vocabulary(),
                handoff_pairs=pairs,
            )
        if view == "caps":
            return replace(base, caps=cut.caps())
        if view == "channels":
            channels = cut.channels()
            return replace(base, channels=channels, throughput=self._throughput(channels))
        if view == "customer" and request.customer_query:
            lookup = self._lookup(cut, request.customer_query)
            if lookup.record is not None:
                why = explain_for_console(self.reader.location, lookup.record.customer)
                lookup = replace(lookup, explanation=why)
            return replace(base, customer=lookup)
        if view == "outcomes":
            return replace(base, outcomes=cut.outcomes())
        return base

    @staticmethod
    def _lookup(cut: ConsoleCut, query: str) -> CustomerLookup:
        record = cut.customer(query.strip())
        if record is not None:
            match = CustomerMatch(record.customer, record.email, record.phone, None, "")
            return CustomerLookup(query, (match,), record)
        matches = cut.find_customers(query)
        if len(matches) == 1:
            return CustomerLookup(query, matches, cut.customer(matches[0].customer))
        return CustomerLookup(query, matches, None)

    def _throughput(self, channels: tuple[ChannelStats, ...]) -> tuple[tuple[str, float], ...]:
        """Sends per wall-clock second per channel over the last ~5 s of polls."""
        now = time.monotonic()
        sent = {c.channel: c.sent for c in channels if c.channel is not None}
        history = self._sent_history
        history.append((now, sent))
        while len(history) > 2 and now - history[0][0] > 5.0:
            history.popleft()
        then, old = history[0]
        span = now - then
        if span <= 0:
            return tuple((c, 0.0) for c in sent)
        return tuple((c, max(0, n - old.get(c, 0)) / span) for c, n in sent.items())


def explain_for_console(location: Path | str, customer: str) -> Mapping[str, Any] | None:
    """`omniconsole explain CUSTOMER` for the customer pane (poll worker thread); None
    when it cannot be told (the pane then shows the stored words only). Never raises."""
    try:
        return explain_customer_at(location, customer)
    except (ExplainError, StoreError, sqlite3.Error, PartsError, ValueError, KeyError):
        return None
