"""Who is held out and who gets which variant: stable hashes, the same everywhere.

A customer's place in an experiment is a number in [0, 1) drawn from a BLAKE2b hash of
text (never Python's `hash`, which is randomised per process), so it is the same in
every partition, on resume, in replay and in serve, whatever the order of events:

- global control: `unit("global", salt, customer) < share` — held out of every
  non-transactional journey (`holdout:global`; it wins over a journey's own holdout);
- a journey's control: `unit("holdout", salt, journey, customer) < share`
  (`holdout:journey`). A larger share keeps everyone already below the old one, so
  raising it only moves customers from treatment into control;
- a variant, for the treatment customers of a journey with variants: the
  `unit("variant", salt, journey, customer)` falls in one variant's slice of [0, 1)
  (slices in the order written, each as wide as its share), else `base`. It is drawn
  independently of the holdout, so changing the control share never moves a treated
  customer between variants.

The flow computes the arm once when an instance is entered and keeps it on the
instance; the report recomputes it from the same functions to split outcomes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from omniconsole.domain.channels import Category
from omniconsole.domain.config import EngineConfig, JourneyDef, StepDef
from omniconsole.domain.experiments import BASE_VARIANT, ControlGroup, StepOverride

#: ledger reasons (and arm names) of held-out steps
HOLDOUT_JOURNEY = "holdout:journey"
HOLDOUT_GLOBAL = "holdout:global"
HELD_OUT_ARMS = frozenset({HOLDOUT_JOURNEY, HOLDOUT_GLOBAL})

_SCALE = float(1 << 64)


def unit(*parts: str) -> float:
    """A stable number in [0, 1) for `parts` (BLAKE2b of the parts joined by U+001F)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_global_control(customer: str, control: ControlGroup | None) -> bool:
    """Whether `customer` is in the workspace's global control group."""
    return control is not None and unit("global", control.salt, customer) < control.share


def journey_arm(
    customer: str, journey: JourneyDef, global_control: ControlGroup | None
) -> str | None:
    """The customer's arm in `journey`: a holdout reason, a variant name, or None.

    None means treatment in a journey without variants (nothing to mark). A
    transactional journey is never held out.
    """
    if journey.category is not Category.TRANSACTIONAL:
        if in_global_control(customer, global_control):
            return HOLDOUT_GLOBAL
        holdout = journey.holdout
        if (
            holdout is not None
            and unit("holdout", holdout.salt, journey.name, customer) < holdout.share
        ):
            return HOLDOUT_JOURNEY
    if not journey.variants:
        return None
    draw = unit("variant", journey.salt, journey.name, customer)
    edge = 0.0
    for variant in journey.variants:
        edge += variant.share
        if draw < edge:
            return variant.name
    return BASE_VARIANT


@dataclass(frozen=True, slots=True)
class Arm:
    """What an arm means for a send: held out (and why), the variant, its templates.

    One per (journey, arm name), built once per config; a `SendRequest` carries it.
    """

    name: str
    held_out: bool
    #: the variant name the ledger line carries (None when held out)
    variant: str | None
    #: step name -> template step to render instead (live sends)
    templates: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VariantSteps:
    """A variant's view of a journey's steps, split as the flow needs them."""

    steps: Mapping[str, StepDef]  # every step, with the variant's overrides
    timed: tuple[tuple[timedelta, str], ...]  # (after, step name) of steps timed after entry
    at_entry: tuple[StepDef, ...]  # steps due at entry itself


class Assigner:
    """The experiments of one config: which journeys have any, and each arm's meaning."""

    def __init__(self, config: EngineConfig) -> None:
        self.global_control = config.policy.global_control
        on = self.global_control is not None and self.global_control.share > 0
        self.journeys: dict[str, JourneyDef] = {
            j.name: j
            for j in config.journeys
            if j.variants
            or (j.category is not Category.TRANSACTIONAL and (on or j.holdout is not None))
        }
        self.arms: dict[tuple[str, str], Arm] = {}
        self.variant_steps: dict[tuple[str, str], VariantSteps] = {}
        for journey in self.journeys.values():
            for held in (HOLDOUT_JOURNEY, HOLDOUT_GLOBAL):
                self.arms[(journey.name, held)] = Arm(held, True, None)
            if not journey.variants:
                continue
            self.arms[(journey.name, BASE_VARIANT)] = Arm(BASE_VARIANT, False, BASE_VARIANT)
            for variant in journey.variants:
                templates = {o.step: o.template for o in variant.steps if o.template is not None}
                self.arms[(journey.name, variant.name)] = Arm(
                    variant.name, False, variant.name, templates
                )
                self.variant_steps[(journey.name, variant.name)] = _variant_steps(
                    journey, {o.step: o for o in variant.steps}
                )

    @property
    def active(self) -> bool:
        """Whether any journey has a control group or variants."""
        return bool(self.journeys)

    def arm_name(self, customer: str, journey: JourneyDef) -> str | None:
        """The customer's arm in `journey` (see `journey_arm`)."""
        if journey.name not in self.journeys:
            return None
        return journey_arm(customer, journey, self.global_control)

    def arm(self, journey: str, name: str | None) -> Arm | None:
        """The meaning of arm `name` in `journey` (None for None)."""
        return None if name is None else self.arms.get((journey, name))


def _variant_steps(journey: JourneyDef, overrides: Mapping[str, StepOverride]) -> VariantSteps:
    steps: dict[str, StepDef] = {}
    for step in journey.steps:
        o = overrides.get(step.name)
        if o is not None:
            step = replace(
                step,
                channels=o.channels if o.channels is not None else step.channels,
                after=o.after if o.after is not None else step.after,
            )
        steps[step.name] = step
    timed = tuple(
        (s.after, s.name)
        for s in steps.values()
        if s.after is not None and s.after.total_seconds() > 0
    )
    at_entry = tuple(
        s for s in steps.values() if s.after is not None and s.after.total_seconds() == 0
    )
    return VariantSteps(steps, timed, at_entry)
