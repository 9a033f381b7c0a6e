"""Running counts of the ledger for the console: per channel, step, reason, hour, handoff.

Counts that would need a full scan of the ledger are kept incrementally by tailing
`ledger.id` (append-only; in a partitioned store, each part's) so a poll stays cheap
on a store of a million events. `LedgerFold.refresh` folds in what the cut holds
beyond the last poll; a recreated store starts the counts over.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from omniconsole.adapters.store.console_queries import StoreCut
from omniconsole.adapters.store.console_rows import DecisionRow, HandoffRow

__all__ = ["HANDOFF_FEED", "LedgerCounts", "LedgerFold", "hour_of"]

#: Handoffs kept in memory for the live feed.
HANDOFF_FEED = 500
#: Simulated hours remembered for the series.
HOURS_KEPT = 192


def hour_of(at: str) -> str:
    """The simulated hour an ISO time falls in (`2026-01-05T10`)."""
    return at[:13]


@dataclass(slots=True)
class LedgerCounts:
    """Counts of every decision folded so far."""

    last_ids: dict[str, int] = field(default_factory=dict)  # tailed up to, per source
    by_channel: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    by_step: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_customer: Counter[tuple[str, str]] = field(default_factory=Counter)
    reason_hours: dict[str, Counter[str]] = field(default_factory=dict)
    journey_hours: dict[str, Counter[str]] = field(default_factory=dict)
    hours: OrderedDict[str, None] = field(default_factory=OrderedDict)
    handoffs: deque[HandoffRow] = field(default_factory=lambda: deque(maxlen=HANDOFF_FEED))
    handoff_total: int = 0
    handoff_pairs: Counter[str] = field(default_factory=Counter)

    @property
    def last_hour(self) -> str | None:
        """The newest simulated hour with a decision."""
        return next(reversed(self.hours)) if self.hours else None

    def add(self, d: DecisionRow) -> None:
        """Count one decision."""
        outcome, hour = d.outcome, hour_of(d.at)
        if hour not in self.hours:
            self.hours[hour] = None
            while len(self.hours) > HOURS_KEPT:
                self.hours.popitem(last=False)
        self.by_channel[(d.channel, outcome)] += 1
        self.by_step[(d.journey, d.step, outcome)] += 1
        if outcome == "sent":
            self.journey_hours.setdefault(d.journey, Counter())[hour] += 1
        if outcome in ("deferred", "suppressed") and d.reason:
            self.by_reason[(d.reason, outcome)] += 1
            self.reason_hours.setdefault(d.reason, Counter())[hour] += 1
            self.by_customer[(d.customer, outcome)] += 1
        if d.handoff is not None and outcome != "deferred":
            row = HandoffRow(d, d.handoff)
            self.handoffs.append(row)
            self.handoff_total += 1
            self.handoff_pairs[row.pair] += 1


class LedgerFold:
    """Keeps `LedgerCounts` up to date across polls. Use from one thread."""

    def __init__(self, batch: int = 50_000) -> None:
        """Nothing folded yet."""
        self.batch = batch
        self.counts = LedgerCounts()
        self._generation = -1

    def refresh(self, cut: StoreCut, generation: int) -> LedgerCounts:
        """Fold the decisions `cut` holds beyond the last refresh (per source)."""
        counts = self.counts
        tops = {src: cut.ledger_top(src) for src in cut.sources}
        if generation != self._generation or any(
            top < counts.last_ids.get(src, 0) for src, top in tops.items()
        ):
            counts = self.counts = LedgerCounts()  # a new connection, or a recreated store
            self._generation = generation
        for src, top in tops.items():
            last = counts.last_ids.get(src, 0)
            while last < top:
                rows = cut.ledger_after(src, last, self.batch)
                if not rows:
                    break
                for _, decision in rows:
                    counts.add(decision)
                last = rows[-1][0]
            counts.last_ids[src] = last
        return counts
