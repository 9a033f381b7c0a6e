"""The Outcomes view's records: each measured journey's treatment against its control.

Reads the instances of the journeys a control group or variants measure from one
committed cut, puts each back in its arm with the engine's own assignment (the run's
config, as `meta` stores it) and counts them as the replay report does
(`omniconsole.domain.outcomes`), plus the cumulative conversions day by day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from omniconsole.adapters.store.console_queries import StoreCut
from omniconsole.adapters.store.console_rows import OutcomesOverview
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.outcomes import (
    CONTROL,
    TREATMENT,
    measured_journeys,
    outcomes_json,
    tally_outcomes,
)
from omniconsole.domain.records import InstanceRecord

__all__ = ["outcomes_overview"]

#: at most this many days in the conversions-over-time series (the last ones)
MAX_DAYS = 60


def _instances(cut: StoreCut, journeys: list[str]) -> Iterator[InstanceRecord]:
    marks = ", ".join("?" for _ in journeys)
    cursor = cut.conn.execute(
        f"SELECT {', '.join(InstanceRecord._fields)} FROM journey_instances"
        f" WHERE journey IN ({marks})",
        tuple(journeys),
    )
    while rows := cursor.fetchmany(10_000):
        for row in rows:
            yield InstanceRecord(*row)


def _days(first: str, last: str) -> tuple[str, ...]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    span = min((end - start).days, MAX_DAYS - 1)
    return tuple((end - timedelta(days=n)).isoformat() for n in range(span, -1, -1))


def outcomes_overview(cut: StoreCut) -> OutcomesOverview:
    """The Outcomes view of one cut."""
    policy = cut.policy()
    journeys = cut.journey_defs()
    if policy is None or not journeys:
        return OutcomesOverview(None)
    config = EngineConfig(policy, journeys, Path(cut.meta(("config_dir",)).get("config_dir", "")))
    measured = measured_journeys(config)
    if not measured:
        return OutcomesOverview(None)
    tally = tally_outcomes(config, _instances(cut, measured))
    seen = sorted(d for j in measured for g in (TREATMENT, CONTROL) for d in tally.by_day(j, g))
    days = _days(seen[0], seen[-1]) if seen else ()
    conversions: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {}
    for journey in measured:
        conversions[journey] = {}
        for group in (TREATMENT, CONTROL):
            per_day = tally.by_day(journey, group)
            entered = converted = 0
            before = days[0] if days else ""
            for day, (e, c) in per_day.items():
                if day < before:  # days older than the series still count
                    entered, converted = entered + e, converted + c
            series = []
            for day in days:
                e, c = per_day.get(day, (0, 0))
                entered, converted = entered + e, converted + c
                series.append((entered, converted))
            conversions[journey][group] = tuple(series)
    return OutcomesOverview(outcomes_json(tally), days, conversions)
