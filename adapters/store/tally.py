"""The console's counts, kept as the store writer writes: the `counters` tables.

Every ledger record and journey instance the engine writes passes the store writer;
`Tally` counts them there, and the writer adds the counts to the stored ones in the
same transaction as the rows (`total = total + excluded.total`), so a resumed run, a
crash and every partition's part stay exact, and no reader ever folds the ledger.
Pure Python over the typed records; the writer supplies which instances are new.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import orjson

from omniconsole.domain.records import (
    CounterRecord,
    HourCounterRecord,
    InstanceCounterRecord,
    InstanceRecord,
    LedgerRecord,
)

__all__ = ["ENDED", "Tally"]

#: the final statuses of a journey instance: each instance reaches one, once
ENDED = frozenset({"converted", "completed", "expired"})
_FALLBACK = ":fallback"


class Tally:
    """Counts since the last checkpoint. Use from the writer's one thread."""

    __slots__ = ("decisions", "hours", "instances")

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str, str, str, str, int, str]] = Counter()
        self.hours: Counter[tuple[str, str, str, str, str]] = Counter()
        self.instances: Counter[tuple[str, str]] = Counter()

    def add_decisions(self, records: Sequence[LedgerRecord]) -> None:
        """Count ledger records (one per decision)."""
        decisions, hours = self.decisions, self.hours
        for r in records:
            channel = r.channel or ""
            reason = r.reason or ""
            handoff = ""
            if r.handoff_from is not None and r.outcome == "sent":
                source = orjson.loads(r.handoff_from).get("channel", "?")
                handoff = f"{source}>{channel}"
            resend = 1 if r.message_id.endswith(_FALLBACK) else 0
            decisions[(r.journey, r.step, channel, r.outcome, reason, resend, handoff)] += 1
            hours[(r.at[:13], r.journey, channel, r.outcome, reason)] += 1

    def add_instances(self, records: Sequence[InstanceRecord], entered: Iterable[str]) -> None:
        """Count instances that ended, and `entered`: the journey of each new instance."""
        instances = self.instances
        for r in records:
            if r.status in ENDED:
                instances[(r.journey, r.status)] += 1
        for journey in entered:
            instances[(journey, "entered")] += 1

    def records(
        self,
    ) -> tuple[list[CounterRecord], list[HourCounterRecord], list[InstanceCounterRecord]]:
        """The counts as store records, and forget them (they go into this checkpoint)."""
        out = (
            [CounterRecord(*key, n) for key, n in self.decisions.items()],
            [HourCounterRecord(*key, n) for key, n in self.hours.items()],
            [InstanceCounterRecord(*key, n) for key, n in self.instances.items()],
        )
        self.decisions.clear()
        self.hours.clear()
        self.instances.clear()
        return out
