"""Progress on long work, on a terminal: `replay` and `generate` (rich's progress bars).

Drawn on stderr, and only when stderr is a terminal and `--quiet` was not given, so
pipes and logs stay clean. A resumed replay says where it continues from either way
(one line), unless `--quiet`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from omniconsole.engine.replay_watch import ReplayProgress, ResumePoint

__all__ = ["GenerateBar", "ReplayBar", "wants_bar"]


def wants_bar(quiet: bool, stream: TextIO | None = None) -> bool:
    """Whether to draw a bar: on a terminal, unless asked to be quiet."""
    stream = stream or sys.stderr
    return not quiet and stream.isatty()


def _when(clock: str | None) -> str:
    return "" if not clock else f"{clock[:10]} {clock[11:16]}Z"


class ReplayBar:
    """A `ReplayWatcher` drawing lines read, events/s, decisions and the ETA (by bytes)."""

    def __init__(self, *, bar: bool, say: bool = True, stream: TextIO | None = None) -> None:
        """`bar`: draw the bar; `say`: say where a resume continues from."""
        self.stream = stream or sys.stderr
        self.say = say
        self.console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        if bar:
            self.bar = Progress(
                TextColumn("replay"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("line {task.fields[line]:,}"),
                TextColumn("{task.fields[rate]:,.0f} events/s"),
                TextColumn("{task.fields[decisions]:,} decisions"),
                TextColumn("{task.fields[clock]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )

    def resuming(self, point: ResumePoint) -> None:
        """Say where the run continues from (or that there is nothing to resume)."""
        if not self.say:
            return
        if point.status == "done":
            text = (
                f"resume: this replay had finished (line {point.line:,},"
                f" {point.decisions:,} decisions); its ledger and report are written again"
            )
        elif point.status == "until" and point.until:
            text = (
                f"resume: continuing from line {point.line:,}, where --until"
                f" {point.until} stopped it ({point.decisions:,} decisions so far)"
            )
        else:
            text = (
                f"resume: continuing from line {point.line:,} (sim {_when(point.clock)},"
                f" {point.decisions:,} decisions committed; the run was {point.status})"
            )
        print(f"omniconsole: {text}", file=self.stream, flush=True)  # fmt: skip

    def progress(self, progress: ReplayProgress) -> None:
        """Move the bar."""
        if self.bar is None:
            return
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task(
                "replay", total=max(progress.bytes_total, 1), line=0, rate=0.0, decisions=0,
                clock="",
            )  # fmt: skip
        self.bar.update(
            self.task,
            completed=progress.bytes_read,
            line=progress.line,
            rate=progress.events_per_second,
            decisions=progress.decisions,
            clock=_when(progress.clock),
        )

    def finished(self) -> None:
        """Take the bar away."""
        if self.bar is not None and self.task is not None:
            self.bar.stop()
            self.task = None


class GenerateBar:
    """Events written of the expected number, for `generate`."""

    def __init__(self, total: int, *, bar: bool, stream: TextIO | None = None) -> None:
        """`total`: about how many events will be written."""
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if bar:
            stream = stream or sys.stderr
            self.progress = Progress(
                TextColumn("generate"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("generate", total=max(total, 1))

    def __call__(self, written: int) -> None:
        """`written` lines so far."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=written)

    def close(self) -> None:
        """Take the bar away."""
        if self.progress is not None:
            self.progress.stop()
