"""What the generated customers do, and how much: the event mixes (`MIXES`), the shares
that shape a customer, and a planted lift (`PlantedLift`) for proving outcomes.

`omniconsole.domain.generator` reads these while it writes a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omniconsole.domain.assignment import HELD_OUT_ARMS, journey_arm
from omniconsole.domain.config import EngineConfig, JourneyDef

_DAY = 86_400

# Shares that shape a customer (tuned so a 14-day log reads like a real product).
NEW_SHARE = 0.85  # customers who sign up inside the window; the rest already had accounts
ACTIVATION = 0.4  # of new customers, who reach `Activated`
# Expected events a customer produces besides sessions, and the overshoot of the last
# session; used to turn a target number of events per customer into sessions.
_FIXED_EVENTS = 4.0
SESSION_OVERSHOOT = 2.0


def default_events_per_customer(days: int) -> float:
    """How many events a customer averages over `days` when the caller does not say."""
    return 3.0 + 0.5 * days


@dataclass(frozen=True, slots=True)
class EventMix:
    """How often a customer does the things that make the engine decide, besides sessions.

    The default is the generator's own realistic mix (the bundled sample and the
    throughput benchmark's log); other presets in `MIXES` change only these knobs, so
    the default mix writes the same bytes as before mixes existed.
    """

    name: str
    #: chance of one more `Price Dropped` (a geometric count: 0.25 averages 1/3 each),
    #: at any hour of the day, so many fall in quiet hours
    price_drop_repeat: float = 0.25
    #: chance of one more `Product Viewed` outside sessions, at human hours (0: none)
    view_repeat: float = 0.0
    #: the events per customer when the caller does not say (None: by the days)
    events_per_customer: float | None = None
    #: expected events per customer besides sessions (the default's include its 1/3
    #: price drop); what is left of a target count becomes sessions
    fixed_events: float = _FIXED_EVENTS


MIXES: dict[str, EventMix] = {
    "default": EventMix("default"),
    # Issue "Per-core speed": most events cause a decision and many decisions defer.
    # About 5.5 events per customer and no sessions beyond an existing customer's
    # first; about a fifth `Price Dropped` (at any hour: quiet-hour deferrals, then
    # all-channel caps at 08:00) and another fifth `Product Viewed` (a recommendation a
    # day later). A larger `events_per_customer` adds sessions.
    "decision-heavy": EventMix(
        "decision-heavy",
        price_drop_repeat=0.5,
        view_repeat=0.45,
        events_per_customer=5.5,
        fixed_events=_FIXED_EVENTS - 0.25 / 0.75 + 0.5 / 0.5 + 0.45 / 0.55,
    ),
}


class PlantedLift:
    """Extra conversions for the treated customers of some journeys: a known true lift.

    The generator decides whether a new customer activates with one draw `u` in [0, 1):
    below the base activation rate (0.4) they do, whatever their group. A customer
    *treated* in a planted journey (by the engine's assignment: neither its control nor
    the global control group) with `u` in [0.4, 0.4 + effect) activates too, at a
    random time within the journey's lifetime and the log's window. So treatment and
    control differ by `effect` in expectation — the planted absolute lift. Only a
    journey entered by `Signed Up` with goal `Activated` (what the generator's new
    customers do) can be planted, one effect per customer.
    """

    def __init__(self, config: EngineConfig, effects: dict[str, float]) -> None:
        journeys = {j.name: j for j in config.journeys}
        self.global_control = config.policy.global_control
        self.plants: list[tuple[JourneyDef, float]] = []
        for name, effect in effects.items():
            journey = journeys.get(name)
            if journey is None:
                raise ValueError(f"no journey {name!r} in {config.directory}")
            if journey.entry_event != "Signed Up" or journey.goal_event != "Activated":
                raise ValueError(
                    f"journey {name!r} is entered by {journey.entry_event!r} with goal "
                    f"{journey.goal_event!r}: the generator can plant a lift only for a "
                    "journey entered by 'Signed Up' with goal 'Activated'"
                )
            has_control = journey.holdout is not None or (
                self.global_control is not None and self.global_control.share > 0
            )
            if not has_control:
                raise ValueError(
                    f"journey {name!r} has no control group in {config.directory}"
                    " (no [holdout], no [global_control]): its lift could not be measured"
                )
            if not 0.0 < effect <= 1.0 - ACTIVATION:
                raise ValueError(
                    f"the planted lift of {name!r} must be above 0 and at most "
                    f"{1.0 - ACTIVATION:g} (the base activation rate is {ACTIVATION:g}),"
                    f" got {effect:g}"
                )
            self.plants.append((journey, effect))

    def planted(self, customer: str, draw: float) -> int | None:
        """The lifetime (seconds) within which `customer` converts by the plant, or None."""
        for journey, effect in self.plants:
            if not ACTIVATION <= draw < ACTIVATION + effect:
                continue
            if journey_arm(customer, journey, self.global_control) in HELD_OUT_ARMS:
                continue
            lifetime = journey.lifetime
            return int(lifetime.total_seconds()) if lifetime is not None else 30 * _DAY
        return None


def parse_plant_lift(specs: Sequence[str]) -> dict[str, float]:
    """`["onboarding=0.08", ...]` as {journey: effect}; ValueError says what is wrong."""
    effects: dict[str, float] = {}
    for spec in specs:
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            try:
                effect = float(value)
            except ValueError:
                effect = float("nan")
            if not sep or not name.strip() or effect != effect:
                raise ValueError(
                    f"--plant-lift wants JOURNEY=EFFECT (e.g. onboarding=0.08), got {part!r}"
                )
            effects[name.strip()] = effect
    return effects
