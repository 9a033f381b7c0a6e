"""The replay's driver state: what is read, applied and committed, and its progress.

`ReplayDriver` holds the cut being built (line, counts, clock) and hands batches to the
engine: headless, at the next event's time; watched in a console (paced), in steps of
simulated time so the committed clock covers every decision committed with it and moves
through quiet hours. `ProgressPublisher` says how far the reading is. `run_replay`
(`replay.py`) owns them; both run on the replay's thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from omniconsole.adapters.store import Store
from omniconsole.adapters.store.progress import Progress
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.timeutil import EPOCH, format_timestamp
from omniconsole.engine.collector import CheckpointCollector
from omniconsole.engine.protocol import Engine
from omniconsole.engine.replay_watch import ReplayProgress
from omniconsole.engine.seen_ids import SeenIds

if TYPE_CHECKING:
    from omniconsole.engine.replay import ReplayOptions

__all__ = ["TICK", "EventCounts", "ProgressPublisher", "ReplayDriver", "cut_meta"]

#: A headless replay's checkpoint due by time (`checkpoint_seconds`) waits until the
#: work since the last one took at least this many times what that one cost: committing
#: then takes at most a fifth of the replay. A checkpoint's cost grows with the profiles
#: changed since the last, and with every profile of a 100,000-customer log in memory a
#: checkpoint every 15 s stored most of them each time (paired runs, ledgers identical:
#: CPU -8 to -17 % on the bench logs). Watched replays keep their cadence: the screen
#: moves with each commit.
CHECKPOINT_COST_RATIO = 4


@dataclass(slots=True)
class EventCounts:
    """The report's `events` section."""

    read: int = 0
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    late: int = 0


@dataclass(slots=True)
class ReplayDriver:
    """The cut a replay is building and how it reaches the engine and the store (the
    replay's thread only)."""

    options: ReplayOptions
    config: EngineConfig
    store: Store
    engine: Engine
    pacer: Pacer | None
    collector: CheckpointCollector = field(default_factory=CheckpointCollector)
    counts: EventCounts = field(default_factory=EventCounts)
    clock: datetime | None = None
    #: everything before this simulated time is decided and handed to the store
    view: datetime | None = None
    span: timedelta | None = None  # paced: the step of simulated time between commits
    batch_size: int = 0
    batch_start: datetime | None = None  # clock time of the batch's first event
    since_checkpoint: int = 0
    #: seconds on a steady clock (`time.monotonic`; a test gives its own)
    monotonic: Callable[[], float] = time.monotonic
    #: when the last checkpoint ended, on `monotonic` (the driver's start until then)
    last_checkpoint: float = field(init=False)
    #: seconds the last checkpoint took (headless: the next waits CHECKPOINT_COST_RATIO x)
    checkpoint_cost: float = 0.0
    stopped: bool = False
    #: the last cut the engine has fully applied: (log line, counts, clock, view). A stop
    #: can come with a batch read but not applied; its checkpoint must claim only this.
    applied: tuple[int, EventCounts, datetime | None, datetime | None] = (
        0, EventCounts(), None, None,
    )  # fmt: skip
    progress: ProgressPublisher | None = None
    #: the applied message ids, told when a checkpoint has committed them
    seen: SeenIds | None = None

    def __post_init__(self) -> None:
        self.last_checkpoint = self.monotonic()

    def meta(self, line: int, status: str) -> dict[str, str]:
        """The checkpoint facts of the cut at log line `line`, as read so far."""
        return cut_meta(line, status, self.counts, self.clock, self.view)

    def mark_applied(self, line: int) -> None:
        """Everything up to log line `line` (and the clock now) is with the engine."""
        self.applied = (line, replace(self.counts), self.clock, self.view)

    def advance(self, to: datetime | None, line: int) -> None:
        """Apply what was added and every timer due before `to`; checkpoint when due."""
        self.engine.apply(to)
        if to is not None:
            self.view = latest(self.view, to - TICK)
        self.mark_applied(line)
        options = self.options
        interval = options.checkpoint_seconds
        if self.pacer is None:
            interval = max(interval, CHECKPOINT_COST_RATIO * self.checkpoint_cost)
        if (
            self.since_checkpoint >= options.checkpoint_events
            or self.monotonic() - self.last_checkpoint >= interval
        ):
            self.checkpoint(line, "running")

    def flush(self, horizon: datetime | None, line: int) -> None:
        """Hand the current batch to the engine; checkpoint when one is due.

        Watched in a console (paced), the batch is applied once the simulated clock has
        reached its last event, and the time up to the next event is then walked in
        steps, each committed: what the screen shows is never ahead of its clock, and
        the clock moves even when no event comes for days."""
        self.since_checkpoint += self.batch_size
        self.batch_size, self.batch_start = 0, None
        pacer, last = self.pacer, self.clock
        if pacer is None or horizon is None or last is None:
            self.advance(horizon, line)
            return
        if not pacer.wait_for(last):
            self.stopped = True
            return
        self.advance(min(horizon, last + TICK), line)
        self.walk(horizon, line)

    def walk(self, to: datetime, line: int) -> None:
        """Paced: fire the timers due before `to` in steps of simulated time."""
        assert self.pacer is not None and self.span is not None
        while not self.stopped and self.view is not None and self.view + TICK < to:
            step = min(to, self.view + TICK + self.span)
            if not self.pacer.wait_for(step):
                self.stopped = True
                return
            self.advance(step, line)

    def checkpoint(self, line: int, status: str, extra: Mapping[str, str] | None = None) -> None:
        """Commit the cut read so far (at log line `line`), with `extra` meta facts."""
        now = self.clock or EPOCH
        meta = {**self.meta(line, status), **(extra or {})}
        began = self.monotonic()
        self.engine.checkpoint(self.options.cut(meta, now))
        if self.seen is not None:
            self.seen.committed()
        self.collector.checkpoint(status)
        self.since_checkpoint = 0
        self.last_checkpoint = self.monotonic()
        self.checkpoint_cost = self.last_checkpoint - began
        if self.progress is not None:
            self.progress.committed()

    def checkpoint_applied(self, status: str) -> None:
        """Commit the last applied cut (a stop: what was read after it is read again)."""
        line, counts, clock, view = self.applied
        meta = cut_meta(line, status, counts, clock, view)
        self.engine.checkpoint(self.options.cut(meta, clock or EPOCH))


#: the smallest step of simulated time (timestamps are kept to the microsecond)
TICK = timedelta(microseconds=1)


def latest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two times (None: unknown)."""
    if a is None:
        return b
    return a if b is None or a >= b else b


def cut_meta(
    line: int, status: str, counts: EventCounts, clock: datetime | None, view: datetime | None
) -> dict[str, str]:
    """The checkpoint facts of a cut."""
    # `clock` is the driver's (the last event's time: a resumed run starts from it);
    # `view_clock` is the time up to which every decision of the cut is made, which is
    # the clock a console shows beside the cut's decisions
    view = latest(clock, view)
    return {
        "checkpoint_line": str(line),
        "clock": "" if clock is None else format_timestamp(clock),
        "view_clock": "" if view is None else format_timestamp(view),
        "counters": orjson.dumps(asdict(counts)).decode(),
        "status": status,
    }


class ProgressPublisher:
    """Says how far the replay has read: to the watcher a few times a second, and
    beside the store once a second (for consoles). Runs on the replay's thread."""

    def __init__(self, driver: ReplayDriver, size: int) -> None:
        """Publish for `driver`, reading a log of `size` bytes."""
        self.driver = driver
        self.size = size
        self.started = time.monotonic()
        self.first_events = driver.counts.applied
        self.said = 0.0
        self.published = 0.0
        self.decisions = 0

    def committed(self) -> None:
        """A checkpoint committed: learn the decisions it holds (when anyone watches)."""
        if self.driver.options.watcher is None:
            return
        with contextlib.closing(self.driver.store.reader()) as reader:
            self.decisions = reader.decision_count()

    def tick(self, line: int, offset: int, *, force: bool = False) -> None:
        """The replay has read to log line `line` (byte `offset`): say so when due."""
        now = time.monotonic()
        watcher = self.driver.options.watcher
        due_watcher = watcher is not None and (force or now - self.said >= 0.25)
        due_store = force or now - self.published >= 1.0
        if not (due_watcher or due_store):
            return
        driver = self.driver
        elapsed = max(now - self.started, 1e-6)
        clock = driver.clock
        fact = ReplayProgress(
            line=line,
            bytes_read=offset,
            bytes_total=self.size,
            events=driver.counts.applied,
            clock=None if clock is None else format_timestamp(clock),
            events_per_second=(driver.counts.applied - self.first_events) / elapsed,
            decisions=self.decisions,
        )
        if due_watcher and watcher is not None:
            self.said = now
            watcher.progress(fact)
        if due_store:
            self.published = now
            driver.store.publish_progress(Progress(**asdict(fact), updated=time.time()))
