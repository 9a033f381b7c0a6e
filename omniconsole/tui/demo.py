"""Running a replay inside the console: the engine's replay API behind typed protocols.

The console reaches the engine only through `omniconsole.engine.replay.run_replay` and
`omniconsole.domain.clock.Pacer`, loaded lazily so the console still attaches to a
store when the engine is not installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

__all__ = ["SPEEDS", "DemoRunner", "EngineUnavailable", "Pacer", "load_engine"]

#: Simulated seconds per wall second, slowest to fastest; None = as fast as possible.
SPEEDS: tuple[float | None, ...] = (3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0, None)


class Pacer(Protocol):
    """The engine's thread-safe pacer (omniconsole.domain.clock.Pacer)."""

    @property
    def paused(self) -> bool:
        """Whether the replay is paused."""

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall second; None = as fast as possible."""

    @property
    def sim_time(self) -> datetime | None:
        """The latest simulated time the replay reached."""

    def pause(self) -> None:
        """Pause."""

    def resume(self) -> None:
        """Resume."""

    def toggle(self) -> None:
        """Pause or resume."""

    def set_speed(self, sim_seconds_per_second: float | None) -> None:
        """Change speed."""

    def stop(self) -> None:
        """Stop the replay as soon as possible."""


class EngineUnavailable(RuntimeError):
    """The engine's replay API cannot be imported."""


@dataclass(frozen=True, slots=True)
class Engine:
    """The pieces of the engine the demo uses."""

    replay_options: Callable[..., Any]
    run_replay: Callable[..., Any]
    pacer: Callable[[], Pacer]


def load_engine() -> Engine:
    """Import the replay API, or raise EngineUnavailable saying why."""
    try:
        replay = importlib.import_module("omniconsole.engine.replay")
        clock = importlib.import_module("omniconsole.domain.clock")
        return Engine(
            replay_options=replay.ReplayOptions,
            run_replay=replay.run_replay,
            pacer=cast(Callable[[], Pacer], clock.Pacer),
        )
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailable(f"the engine's replay API is not available: {exc}") from exc


def speed_label(speed: float | None) -> str:
    """`1h/s`, `3d/s`, `max`."""
    if speed is None:
        return "max"
    if speed >= 86400 and speed % 86400 == 0:
        return f"{int(speed // 86400)}d/s"
    if speed >= 3600 and speed % 3600 == 0:
        return f"{int(speed // 3600)}h/s"
    return f"{speed:g}s/s"


class DemoRunner:
    """Runs one replay with a pacer; `run` blocks (call it from a thread worker)."""

    def __init__(
        self,
        log: Path,
        db: Path,
        config_dir: Path | None = None,
        *,
        engine: Engine | None = None,
        options: Any = None,
    ) -> None:
        """Prepare a fresh replay of `log` into `db` (ledger and report beside it)."""
        self.engine = engine or load_engine()
        self.pacer: Pacer = self.engine.pacer()
        self.pacer.set_speed(SPEEDS[0])
        self.db = db
        self.options = options or self.engine.replay_options(
            log=log,
            db=db,
            ledger=db.with_suffix(".ledger.jsonl"),
            report=db.with_suffix(".report.json"),
            rejects=db.with_suffix(".rejects.jsonl"),
            config_dir=config_dir,
            checkpoint_seconds=0.2,
        )

    def run(self) -> None:
        """Replay until done or stopped (blocks; runs on a worker thread)."""
        self.engine.run_replay(self.options, pacer=self.pacer)

    def faster(self) -> None:
        """Next speed up."""
        self._step(+1)

    def slower(self) -> None:
        """Next speed down."""
        self._step(-1)

    def _step(self, delta: int) -> None:
        current = self.pacer.speed
        index = SPEEDS.index(current) if current in SPEEDS else 0
        self.pacer.set_speed(SPEEDS[max(0, min(len(SPEEDS) - 1, index + delta))])

    def label(self) -> str:
        """`▶ 1h/s` or `⏸ paused`, for the status line."""
        if self.pacer.paused:
            return "⏸ paused"
        return f"▶ {speed_label(self.pacer.speed)}"
