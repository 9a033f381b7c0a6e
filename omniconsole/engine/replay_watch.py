"""Who watches a replay, and what it is told: where it resumes, how far it has read.

`run_replay` reports to a `ReplayWatcher` (the CLI's progress bar, or nothing) from
its own thread: once where it starts or resumes from, then a `ReplayProgress` a few
times a second while it reads. Separately, about once a second, it publishes the same
facts beside the store (`adapters.store.progress`) for consoles attached to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["ReplayProgress", "ReplayWatcher", "ResumePoint"]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a `--resume` continues: the committed cut of the interrupted run."""

    line: int
    clock: str | None
    decisions: int
    status: str  # running, stopped, until
    until: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far a replay has read the log."""

    line: int
    bytes_read: int
    bytes_total: int
    events: int
    clock: str | None
    events_per_second: float
    #: decisions committed by the last checkpoint (the engine's own counts)
    decisions: int


class ReplayWatcher(Protocol):
    """Told about a replay as it runs. Called on the replay's thread; must be quick."""

    def resuming(self, point: ResumePoint) -> None:
        """A `--resume` continues from `point`."""

    def progress(self, progress: ReplayProgress) -> None:
        """The replay has read this far (a few times a second)."""

    def finished(self) -> None:
        """The replay is over (finished, stopped or failed)."""
