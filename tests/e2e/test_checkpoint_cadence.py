"""How often a replay commits: every `checkpoint_seconds` at least, but a headless
replay whose checkpoints grow costly waits CHECKPOINT_COST_RATIO times the last one's
cost, so committing never takes more than a fifth of its time; a watched replay keeps
its cadence, since the screen moves with each commit.

The driver runs against an engine whose checkpoints take a given time on a stand-in
clock: what is measured is the cadence, not the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

from omniconsole.domain.clock import Pacer
from omniconsole.engine.protocol import Cut
from omniconsole.engine.replay import ReplayOptions
from omniconsole.engine.replay_driver import CHECKPOINT_COST_RATIO, ReplayDriver

BATCH = 1.0  # seconds of the stand-in clock each batch takes to apply


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedEngine:
    """Applies a batch in BATCH seconds and commits a checkpoint in `cost` seconds."""

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock, self.cost = clock, cost
        self.commits: list[float] = []  # the clock when each checkpoint began

    def apply(self, horizon: datetime | None) -> None:
        self.clock.now += BATCH

    def checkpoint(self, cut: Cut) -> None:
        self.commits.append(self.clock.now)
        self.clock.now += self.cost

    def write(self, records: Sequence[Any]) -> None: ...
    def meta(self) -> Mapping[str, str]:
        return {}


class Watching(Pacer):
    def wait_for(self, sim: datetime) -> bool:
        return True


def commits(cost: float, pacer: Pacer | None) -> list[float]:
    """When each of a 200-batch replay's checkpoints began, every 15 s at least."""
    clock = Clock()
    engine = TimedEngine(clock, cost)
    options = ReplayOptions(log=Path("unused"), db=Path("unused"), ledger=Path("unused"),
                            report=Path("unused"), checkpoint_seconds=15.0)  # fmt: skip
    # the driver's clock starts as if the replay's first checkpoint had just ended
    driver = ReplayDriver(options, cast(Any, None), cast(Any, None), cast(Any, engine), pacer,
                          monotonic=clock)  # fmt: skip
    for line in range(1, 201):
        driver.advance(None, line)
    return engine.commits


def test_cheap_checkpoints_come_every_checkpoint_seconds() -> None:
    began = commits(0.5, None)
    gaps = {round(b - a, 6) for a, b in pairwise(began)}
    assert gaps == {15.5}  # 15 batches of a second, then the half-second commit


def test_costly_checkpoints_space_out_to_a_fifth_of_the_time() -> None:
    cost = 10.0
    began = commits(cost, None)
    work = [b - a - cost for a, b in pairwise(began)]
    assert work and min(work) >= CHECKPOINT_COST_RATIO * cost  # 40 s of work each time
    elapsed = began[-1] + cost
    assert len(began) * cost <= elapsed / (CHECKPOINT_COST_RATIO + 1) + cost  # a fifth


def test_a_watched_replay_keeps_its_cadence_however_costly() -> None:
    began = commits(10.0, Watching())
    work = {round(b - a - 10.0, 6) for a, b in pairwise(began)}
    assert work == {15.0}
