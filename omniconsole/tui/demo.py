"""Running a replay inside the console: the demo's pacing over the engine's replay driver.

The console drives the engine only through `omniconsole.engine.replay.run_replay` and
the domain's thread-safe `Pacer`; the replay runs on a worker thread and the screens
read what it commits from the store.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omniconsole.domain.clock import Pacer
from omniconsole.engine.replay import ReplayOptions, run_replay

__all__ = ["SPEEDS", "DemoRunner", "speed_label"]

#: Simulated seconds per wall second, slowest to fastest; None = as fast as possible.
SPEEDS: tuple[float | None, ...] = (3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0, None)


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
        options: ReplayOptions | None = None,
    ) -> None:
        """Prepare a fresh replay of `log` into `db` (ledger and report beside it)."""
        self.pacer = Pacer()
        self.pacer.set_speed(SPEEDS[0])
        self.db = db
        if options is not None:
            # watched, the screen moves with each commit: commit several times a second
            options = replace(options, checkpoint_seconds=min(options.checkpoint_seconds, 0.2))
        self.options = options or ReplayOptions(
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
        run_replay(self.options, pacer=self.pacer)

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
