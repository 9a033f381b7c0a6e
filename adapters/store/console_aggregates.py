"""The console's running counts, as the engine keeps them: read, never folded.

The engine's store writer counts every decision and journey instance it writes and
commits the counts with each checkpoint (`tally.py`; tables `counters`,
`counters_hourly`, `instance_counters`). A poll reads those small tables — summed
over the parts of a partitioned store — and never scans the ledger.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from omniconsole.adapters.store.console_queries import StoreCut
from omniconsole.adapters.store.console_rows import DecisionFilter

__all__ = ["DecisionCounts", "HourlyCounts", "InstanceCounts"]


def _none(text: str) -> str | None:
    return text or None


@dataclass(slots=True)
class DecisionCounts:
    """Every decision of the store, counted by kind."""

    total: int = 0
    #: (channel or None, outcome) -> decisions
    by_channel: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    #: (journey, step, outcome) -> decisions, fallback re-sends included
    by_step: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (journey, step, outcome) -> the step's own messages (one per customer instance)
    first_by_step: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (journey, step, outcome) -> fallback re-sends of the step (SPEC §5)
    fallback_by_step: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (reason, outcome) -> decisions
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (journey, outcome) -> decisions
    by_journey: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: `from→to` -> sent handoffs
    handoff_pairs: Counter[str] = field(default_factory=Counter)
    #: the stored rows: (journey, step, channel, outcome, reason, resend, handoff, count)
    rows: list[tuple[str, str, str, str, str, int, str, int]] = field(default_factory=list)

    def matching(self, where: DecisionFilter) -> int | None:
        """How many decisions match `where` (None: the counts keep no customers or times)."""
        if where.customer is not None or where.since is not None or where.until is not None:
            return None
        if where.handoffs or where.handoff_from is not None:
            if where.outcome not in (None, "sent") or where.reason is not None:
                return 0
            if where.journey is not None or where.step is not None:
                return None
            to = None if where.channel is None else (where.channel or "—")
            return sum(
                n for pair, n in self.handoff_pairs.items()
                if where.handoff_from in (None, pair.split("→")[0])
                and to in (None, pair.split("→")[1])
            )  # fmt: skip
        return sum(
            n
            for journey, step, channel, outcome, reason, _resend, _handoff, n in self.rows
            if where.outcome in (None, outcome)
            and where.reason in (None, reason)
            and where.channel in (None, channel)
            and where.journey in (None, journey)
            and where.step in (None, step)
        )

    @property
    def handoffs(self) -> int:
        """Sent messages that were handoffs."""
        return sum(self.handoff_pairs.values())

    @classmethod
    def read(cls, cut: StoreCut) -> DecisionCounts:
        """The counts the cut holds."""
        counts = cls()
        counts.rows = cut.counter_rows()
        for journey, step, channel, outcome, reason, resend, handoff, n in counts.rows:
            counts.total += n
            counts.by_channel[(_none(channel), outcome)] += n
            counts.by_step[(journey, step, outcome)] += n
            counts.by_journey[(journey, outcome)] += n
            target = counts.fallback_by_step if resend else counts.first_by_step
            target[(journey, step, outcome)] += n
            if reason:
                counts.by_reason[(reason, outcome)] += n
            if handoff:
                source, _, to = handoff.partition(">")
                counts.handoff_pairs[f"{source}→{to or '—'}"] += n
        return counts


@dataclass(slots=True)
class HourlyCounts:
    """Decisions per simulated hour, from some hour on."""

    #: journey -> hour -> messages sent
    sent_by_journey: dict[str, Counter[str]] = field(default_factory=dict)
    #: reason -> hour -> deferred and suppressed decisions
    by_reason: dict[str, Counter[str]] = field(default_factory=dict)
    #: channel or None -> hour -> messages sent
    sent_by_channel: dict[str | None, Counter[str]] = field(default_factory=dict)
    #: the newest hour with a decision
    last_hour: str | None = None

    @classmethod
    def read(cls, cut: StoreCut, first_hour: str) -> HourlyCounts:
        """The hourly counts from `first_hour` on."""
        counts = cls()
        for hour, journey, channel, outcome, reason, n in cut.hourly_rows(first_hour):
            if counts.last_hour is None or hour > counts.last_hour:
                counts.last_hour = hour
            if outcome == "sent":
                counts.sent_by_journey.setdefault(journey, Counter())[hour] += n
                counts.sent_by_channel.setdefault(_none(channel), Counter())[hour] += n
            elif reason and outcome in ("deferred", "suppressed"):
                counts.by_reason.setdefault(reason, Counter())[hour] += n
        return counts


@dataclass(slots=True)
class InstanceCounts:
    """Journey instances: entered, and how many reached each final status."""

    #: journey -> status ('entered', 'converted', 'completed', 'expired') -> instances
    by_journey: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, cut: StoreCut) -> InstanceCounts:
        """The counts the cut holds."""
        counts = cls()
        for journey, status, n in cut.instance_counter_rows():
            counts.by_journey.setdefault(journey, Counter())[status] += n
        return counts
