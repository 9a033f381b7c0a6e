"""The report's `outcomes` section: per journey and variant, treatment against control.

Each journey instance is put back in its arm with the same assignment the engine drew
at entry (`omniconsole.domain.assignment`, a pure function of customer, journey and
the config), then counted: entered, converted (the goal reached within the lifetime),
and the rate. The lift is treatment rate minus control rate with Newcombe's 95%
interval (`omniconsole.domain.lift`). A variant is measured against the journey's one
control group. Only journeys with a goal and a control group or variants appear.

`tally_outcomes` counts once; `outcomes_report` words the counts as the report's JSON
and `OutcomeTally.by_day` gives the console its conversions over time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from omniconsole.domain.assignment import HELD_OUT_ARMS, HOLDOUT_GLOBAL, Assigner
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.experiments import BASE_VARIANT
from omniconsole.domain.lift import METHOD, Rate, lift
from omniconsole.domain.records import InstanceRecord

CONVERTED = "converted"
TREATMENT = "treatment"
CONTROL = "control"


@dataclass(slots=True)
class _Count:
    entered: int = 0
    converted: int = 0

    def rate(self) -> Rate:
        return Rate(self.entered, self.converted)

    def add(self, other: _Count) -> None:
        self.entered += other.entered
        self.converted += other.converted


@dataclass(slots=True)
class OutcomeTally:
    """Instances of the measured journeys counted per arm, and per group and day."""

    config: EngineConfig
    journeys: list[str]
    #: journey -> arm (a holdout reason, a variant, or `base`) -> counts
    arms: dict[str, dict[str, _Count]] = field(default_factory=dict)
    #: journey -> group (treatment/control) -> day (`2026-03-02`) -> [entered, converted]
    #: (entered on the day of entry, converted on the day the goal was reached)
    days: dict[str, dict[str, dict[str, list[int]]]] = field(default_factory=dict)

    def group(self, journey: str, name: str) -> Rate:
        """The counts of `treatment` or `control` in `journey`."""
        total = _Count()
        for arm, count in self.arms.get(journey, {}).items():
            if (arm in HELD_OUT_ARMS) == (name == CONTROL):
                total.add(count)
        return total.rate()

    def by_day(self, journey: str, name: str) -> dict[str, list[int]]:
        """day -> [entered, converted] of one group of `journey`."""
        return self.days.get(journey, {}).get(name, {})


def measured_journeys(config: EngineConfig) -> list[str]:
    """Journeys whose outcome the report splits: a goal, and a control group or variants."""
    assigner = Assigner(config)
    return sorted(
        name for name, journey in assigner.journeys.items() if journey.goal_event is not None
    )


def tally_outcomes(config: EngineConfig, instances: Iterable[InstanceRecord]) -> OutcomeTally:
    """Count the instances of the measured journeys by arm (and by group and day)."""
    assigner = Assigner(config)
    tally = OutcomeTally(config, measured_journeys(config))
    for name in tally.journeys:
        tally.arms[name] = {}
        tally.days[name] = {TREATMENT: {}, CONTROL: {}}
    for row in instances:
        arms = tally.arms.get(row.journey)
        if arms is None:
            continue
        arm = assigner.arm_name(row.customer, assigner.journeys[row.journey]) or BASE_VARIANT
        count = arms.get(arm)
        if count is None:
            count = arms[arm] = _Count()
        converted = row.status == CONVERTED
        count.entered += 1
        count.converted += converted
        days = tally.days[row.journey][CONTROL if arm in HELD_OUT_ARMS else TREATMENT]
        days.setdefault(row.entered_at[:10], [0, 0])[0] += 1
        if converted and row.ended_at:
            days.setdefault(row.ended_at[:10], [0, 0])[1] += 1
    return tally


def outcomes_report(config: EngineConfig, instances: Iterable[InstanceRecord]) -> dict[str, Any]:
    """The `outcomes` section from the instances of the measured journeys."""
    return outcomes_json(tally_outcomes(config, instances))


def outcomes_json(tally: OutcomeTally) -> dict[str, Any]:
    """The `outcomes` section of a tally."""
    assigner = Assigner(tally.config)
    journeys: dict[str, Any] = {}
    for name in tally.journeys:
        arms = tally.arms[name]
        journey = assigner.journeys[name]
        treatment, control = tally.group(name, TREATMENT), tally.group(name, CONTROL)
        entry: dict[str, Any] = {
            "goal": journey.goal_event,
            "treatment": _rate_json(treatment),
            "control": {
                **_rate_json(control),
                "from_global_group": arms.get(HOLDOUT_GLOBAL, _Count()).entered,
            },
            "lift": _lift_json(treatment, control),
        }
        if journey.variants:
            variants: dict[str, Any] = {}
            for variant in (BASE_VARIANT, *(v.name for v in journey.variants)):
                rate = arms.get(variant, _Count()).rate()
                variants[variant] = {
                    "treatment": _rate_json(rate),
                    "control": _rate_json(control),
                    "lift": _lift_json(rate, control),
                }
            entry["variants"] = variants
        journeys[name] = entry
    return {"method": METHOD, "confidence": 0.95, "journeys": journeys}


def _rate_json(rate: Rate) -> dict[str, Any]:
    return {"entered": rate.entered, "converted": rate.converted, "rate": round(rate.rate, 4)}


def _lift_json(treatment: Rate, control: Rate) -> dict[str, Any] | None:
    found = lift(treatment, control)
    if found is None:
        return None
    return {
        "absolute": round(found.difference, 4),
        "ci95": [round(found.low, 4), round(found.high, 4)],
        "excludes_zero": found.excludes_zero,
    }
