"""The report's `outcomes` section: per journey and variant, treatment against control.

Each journey instance is put back in its arm with the same assignment the engine drew
at entry (`omniconsole.domain.assignment`, a pure function of customer, journey and
the config), then counted: entered, converted (the goal reached within the lifetime),
and the rate. The lift is treatment rate minus control rate with Newcombe's 95%
interval (`omniconsole.domain.lift`). A variant is measured against the journey's one
control group. Only journeys with a goal and a control group or variants appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from omniconsole.domain.assignment import HELD_OUT_ARMS, HOLDOUT_GLOBAL, Assigner
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.experiments import BASE_VARIANT
from omniconsole.domain.lift import METHOD, Rate, lift
from omniconsole.domain.records import InstanceRecord

CONVERTED = "converted"


@dataclass(slots=True)
class _Count:
    entered: int = 0
    converted: int = 0

    def rate(self) -> Rate:
        return Rate(self.entered, self.converted)


def measured_journeys(config: EngineConfig) -> list[str]:
    """Journeys whose outcome the report splits: a goal, and a control group or variants."""
    assigner = Assigner(config)
    return sorted(
        name for name, journey in assigner.journeys.items() if journey.goal_event is not None
    )


def outcomes_report(config: EngineConfig, instances: Iterable[InstanceRecord]) -> dict[str, Any]:
    """The `outcomes` section from the instances of the measured journeys."""
    assigner = Assigner(config)
    names = measured_journeys(config)
    counts: dict[str, dict[str, _Count]] = {name: {} for name in names}
    for row in instances:
        arms = counts.get(row.journey)
        if arms is None:
            continue
        arm = assigner.arm_name(row.customer, assigner.journeys[row.journey]) or BASE_VARIANT
        count = arms.get(arm)
        if count is None:
            count = arms[arm] = _Count()
        count.entered += 1
        count.converted += row.status == CONVERTED
    journeys: dict[str, Any] = {}
    for name in names:
        arms = counts[name]
        journey = assigner.journeys[name]
        control = _Count()
        for held in HELD_OUT_ARMS:
            found = arms.get(held, _Count())
            control.entered += found.entered
            control.converted += found.converted
        treatment = _Count()
        for arm, found in arms.items():
            if arm not in HELD_OUT_ARMS:
                treatment.entered += found.entered
                treatment.converted += found.converted
        entry: dict[str, Any] = {
            "goal": journey.goal_event,
            "treatment": _rate_json(treatment.rate()),
            "control": {
                **_rate_json(control.rate()),
                "from_global_group": arms.get(HOLDOUT_GLOBAL, _Count()).entered,
            },
            "lift": _lift_json(treatment.rate(), control.rate()),
        }
        if journey.variants:
            variants: dict[str, Any] = {}
            for variant in (BASE_VARIANT, *(v.name for v in journey.variants)):
                rate = arms.get(variant, _Count()).rate()
                variants[variant] = {
                    "treatment": _rate_json(rate),
                    "control": _rate_json(control.rate()),
                    "lift": _lift_json(rate, control.rate()),
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
