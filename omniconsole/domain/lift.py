"""How much a journey changed the outcome: the lift of treatment over control.

The lift is the absolute difference of two conversion rates (treatment minus control)
with a 95% confidence interval by Newcombe's hybrid score method ("method 10" of
R. G. Newcombe, *Interval estimation for the difference between independent
proportions: comparison of eleven methods*, Statistics in Medicine 17, 1998): each
rate gets its Wilson score interval, and the two are combined by "square and add".
It behaves well where the textbook Wald interval does not — small groups, rates near
0 or 1, a control group of a few percent — and needs no iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the method's name, as reports print it
METHOD = "Newcombe hybrid score interval (method 10, from Wilson score intervals)"
#: the standard normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Rate:
    """`converted` of `entered`, and its rate (0.0 when nobody entered)."""

    entered: int
    converted: int

    @property
    def rate(self) -> float:
        """converted / entered."""
        return self.converted / self.entered if self.entered else 0.0


@dataclass(frozen=True, slots=True)
class Lift:
    """Treatment rate minus control rate, with its confidence interval."""

    difference: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or wholly below zero."""
        return self.low > 0.0 or self.high < 0.0


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (no continuity correction)."""
    if trials <= 0:
        raise ValueError("a rate needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    scale = 1 + z2 / trials
    low = (centre - spread) / scale
    high = (centre + spread) / scale
    # exact at the edges (the formula gives 0 and 1 up to rounding)
    return (0.0 if successes == 0 else low), (1.0 if successes == trials else high)


def newcombe_interval(treatment: Rate, control: Rate, z: float = Z95) -> Lift:
    """The difference `treatment.rate - control.rate` with Newcombe's hybrid score interval."""
    p1, p2 = treatment.rate, control.rate
    l1, u1 = wilson_interval(treatment.converted, treatment.entered, z)
    l2, u2 = wilson_interval(control.converted, control.entered, z)
    difference = p1 - p2
    below = math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    above = math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Lift(difference, difference - below, difference + above)


def lift(treatment: Rate, control: Rate) -> Lift | None:
    """The lift with its 95% interval, or None when either group is empty."""
    if treatment.entered == 0 or control.entered == 0:
        return None
    return newcombe_interval(treatment, control)
