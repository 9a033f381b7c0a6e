"""Clocks: real time for live use, and a pacer for replays watched in the console."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the engine what time it is."""

    def now(self) -> datetime:
        """The current time, in UTC."""
        ...


class RealClock:
    """Wall-clock time, for the live service."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Pacer:
    """Lets a replay run at a chosen simulated speed, paused, or as fast as possible.

    Thread-safe: the console's thread calls pause/resume/set_speed/stop while the replay
    thread calls `wait_for` before each step of simulated time.
    """

    def __init__(self, speed: float | None = None) -> None:
        self._cond = threading.Condition()
        self._speed = speed
        self._paused = False
        self._stopped = False
        self._anchor: tuple[float, datetime] | None = None
        self.sim_time: datetime | None = None

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall-clock second; None means as fast as possible."""
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def set_speed(self, sim_seconds_per_second: float | None) -> None:
        with self._cond:
            self._speed = sim_seconds_per_second
            self._anchor = None
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._anchor = None
            self._cond.notify_all()

    def toggle(self) -> None:
        if self._paused:
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wait_for(self, sim: datetime) -> bool:
        """Block until simulated time `sim` may be processed; False once stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return False
                if self._paused:
                    self._cond.wait()
                    continue
                speed = self._speed
                if speed is None or speed <= 0:
                    self.sim_time = max(sim, self.sim_time) if self.sim_time else sim
                    return True
                if self._anchor is None or self.sim_time is None:
                    self._anchor = (time.monotonic(), self.sim_time or sim)
                wall0, sim0 = self._anchor
                target = wall0 + (sim - sim0) / timedelta(seconds=1) / speed
                delay = target - time.monotonic()
                if delay <= 0:
                    self.sim_time = max(sim, self.sim_time) if self.sim_time else sim
                    return True
                self._cond.wait(min(delay, 0.05))
