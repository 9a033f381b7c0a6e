"""What one poll of the store returns to the console, and how it is gathered.

`collect` runs on the console's poll worker thread (never on the Textual event loop):
it asks the `StoreReader` only for what the visible view needs, and never raises —
a store that is missing, being created or broken becomes a `Snapshot` saying so.
No textual import here.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field

from omniconsole.adapters.store.reader import (
    CapsOverview,
    ChannelStats,
    CustomerContext,
    CustomerMatch,
    HandoffRow,
    JourneyStats,
    StoreReader,
    StoreStatus,
)

__all__ = ["CustomerLookup", "PollRequest", "Snapshot", "SnapshotCollector", "ViewName"]

ViewName = str  # "journeys", "handoffs", "caps", "channels", "customer"


@dataclass(frozen=True, slots=True)
class PollRequest:
    """What the console is showing, so the poll fetches only that.

    Written by the event loop, read by the poll thread (replaced whole, never mutated).
    """

    view: ViewName = "journeys"
    customer_query: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerLookup:
    """The result of looking up `query`: the matches, and the context when exactly one."""

    query: str
    matches: tuple[CustomerMatch, ...]
    context: CustomerContext | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent look at the store for the visible view."""

    seq: int
    request: PollRequest
    status: StoreStatus
    journeys: tuple[JourneyStats, ...] = ()
    handoffs: tuple[HandoffRow, ...] = ()
    handoff_total: int = 0
    handoff_pairs: tuple[tuple[str, int], ...] = ()
    caps: CapsOverview | None = None
    channels: tuple[ChannelStats, ...] = ()
    throughput: tuple[tuple[str, float], ...] = ()
    customer: CustomerLookup | None = None
    error: str | None = None


@dataclass(slots=True)
class SnapshotCollector:
    """Gathers snapshots from one reader; keeps the history throughput needs.

    Used by one thread (the poll worker).
    """

    reader: StoreReader
    seq: int = 0
    _sent_history: deque[tuple[float, dict[str, int]]] = field(
        default_factory=lambda: deque(maxlen=40)
    )

    def collect(self, request: PollRequest) -> Snapshot:
        """Read what `request.view` needs; errors become part of the snapshot."""
        self.seq += 1
        status = self.reader.status()
        if not status.ready:
            return Snapshot(self.seq, request, status)
        try:
            return self._collect_ready(request, status)
        except sqlite3.Error as exc:
            self.reader.close()
            return Snapshot(self.seq, request, status, error=f"store read failed: {exc}")

    def _collect_ready(self, request: PollRequest, status: StoreStatus) -> Snapshot:
        view = request.view
        journeys: tuple[JourneyStats, ...] = ()
        handoffs: tuple[HandoffRow, ...] = ()
        total = 0
        pairs: tuple[tuple[str, int], ...] = ()
        caps = None
        channels: tuple[ChannelStats, ...] = ()
        throughput: tuple[tuple[str, float], ...] = ()
        customer = None
        if view == "journeys":
            journeys = self.reader.journeys()
        elif view == "handoffs":
            handoffs, total, pair_counts = self.reader.handoffs()
            pairs = tuple(pair_counts.items())
        elif view == "caps":
            caps = self.reader.caps()
        elif view == "channels":
            channels = self.reader.channels()
            throughput = self._throughput(channels)
        elif view == "customer" and request.customer_query:
            customer = self._lookup(request.customer_query)
        return Snapshot(
            self.seq,
            request,
            status,
            journeys=journeys,
            handoffs=handoffs,
            handoff_total=total,
            handoff_pairs=pairs,
            caps=caps,
            channels=channels,
            throughput=throughput,
            customer=customer,
        )

    def _lookup(self, query: str) -> CustomerLookup:
        context = self.reader.customer(query)
        if context is not None:
            match = CustomerMatch(context.customer, context.email, context.phone, "")
            return CustomerLookup(query, (match,), context)
        matches = self.reader.find_customers(query)
        if len(matches) == 1:
            return CustomerLookup(query, matches, self.reader.customer(matches[0].customer))
        return CustomerLookup(query, matches, None)

    def _throughput(self, channels: tuple[ChannelStats, ...]) -> tuple[tuple[str, float], ...]:
        """Sends per wall-clock second per channel over the last ~5 s of polls."""
        now = time.monotonic()
        sent = {c.channel: c.sent for c in channels}
        history = self._sent_history
        history.append((now, sent))
        while len(history) > 2 and now - history[0][0] > 5.0:
            history.popleft()
        then, old = history[0]
        span = now - then
        if span <= 0:
            return tuple((c, 0.0) for c in sent)
        return tuple((c, max(0, n - old.get(c, 0)) / span) for c, n in sent.items())
