"""Where a one-partition replay's wall time goes: its checkpoints against the work between
them, and how many cores each phase keeps busy (issue "Per-core speed").

    .venv/bin/python benchmarks/replay_phases.py --log LOG
    .venv/bin/python benchmarks/replay_phases.py --customers 20000 --mix decision-heavy

It replays the log in this process (`--partitions 1`: every thread of the engine is
here), samples each thread's CPU time (`/proc/self/task`) every `--interval` seconds,
and notes when each checkpoint begins and ends. `ReplayDriver.checkpoint` is wrapped
for that: instrumentation of this benchmark, which the engine itself does not carry.
It prints each checkpoint's wall time, the share of the replay's wall time spent in
checkpoints, and for each phase the cores it used (CPU seconds over wall seconds) and
the CPU seconds of each thread role. A phase held to one core while a second stands
idle has its threads taking turns; overlapping them gives time back only where the
work moved aside needs no interpreter lock (docs/benchmarks.md, ninth round).

Linux only (per-thread CPU comes from /proc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from log_args import add_log_args, log_of
from replay_throughput import cpu_by_thread, thread_cpu, thread_role

from omniconsole.engine import replay_driver
from omniconsole.engine.replay import ReplayOptions, run_replay

#: checkpoint phases and the work between them
CHECKPOINT, WORK = "checkpoints", "between checkpoints"


@dataclass
class Phases:
    """Checkpoint intervals and per-thread CPU samples of one replay (perf_counter times)."""

    checkpoints: list[tuple[float, float]] = field(default_factory=list)
    #: (start, end, CPU seconds by thread role in between)
    samples: list[tuple[float, float, dict[str, float]]] = field(default_factory=list)

    def phase_of(self, start: float, end: float) -> str:
        """The phase a sample belongs to: the one its middle falls in."""
        middle = (start + end) / 2
        inside = any(begun <= middle < done for begun, done in self.checkpoints)
        return CHECKPOINT if inside else WORK

    def summary(self) -> dict[str, tuple[float, dict[str, float]]]:
        """Per phase: wall seconds sampled and CPU seconds by thread role."""
        out: dict[str, tuple[float, dict[str, float]]] = {}
        for start, end, cpu in self.samples:
            phase = self.phase_of(start, end)
            wall, roles = out.get(phase, (0.0, {}))
            for role, seconds in cpu.items():
                roles[role] = roles.get(role, 0.0) + seconds
            out[phase] = (wall + end - start, roles)
        return out


class PhaseSampler:
    """Samples the CPU seconds of every thread of this process, by role, on its own thread
    (`replay_throughput.ThreadSampler` sums them over a run; this keeps each interval)."""

    def __init__(self, phases: Phases, interval: float) -> None:
        self.phases = phases
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="phase-sampler", daemon=True)

    def __enter__(self) -> PhaseSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        before, at = thread_cpu(self.thread), time.perf_counter()
        while not self.stopped.wait(self.interval):
            now, after = time.perf_counter(), thread_cpu(self.thread)
            used: dict[str, float] = {}
            for tid, (name, cpu) in after.items():
                role = thread_role(name)
                used[role] = used.get(role, 0.0) + cpu - before.get(tid, (name, cpu))[1]
            self.phases.samples.append((at, now, used))
            before, at = after, now


def timing_checkpoints(phases: Phases) -> Callable[[], None]:
    """Wrap `ReplayDriver.checkpoint` to note each checkpoint's begin and end; returns
    what undoes it."""
    original = replay_driver.ReplayDriver.checkpoint

    def checkpoint(self: Any, *args: Any, **kwargs: Any) -> None:
        begun = time.perf_counter()
        try:
            original(self, *args, **kwargs)
        finally:
            phases.checkpoints.append((begun, time.perf_counter()))

    replay_driver.ReplayDriver.checkpoint = checkpoint  # type: ignore[method-assign]

    def undo() -> None:
        replay_driver.ReplayDriver.checkpoint = original  # type: ignore[method-assign]

    return undo


def report(phases: Phases, wall: float) -> str:
    """The printed summary."""
    lines = [f"replay: {wall:.1f} s wall"]
    spans = [done - begun for begun, done in phases.checkpoints]
    if spans:
        listed = ", ".join(f"{span:.1f}" for span in spans)
        lines.append(
            f"checkpoints: {len(spans)}, {sum(spans):.1f} s ({sum(spans) / wall:.0%} of the"
            f" wall time): {listed} s"
        )
    summary: Mapping[str, tuple[float, dict[str, float]]] = phases.summary()
    for phase in (WORK, CHECKPOINT):
        if phase not in summary:
            continue
        seconds, roles = summary[phase]
        cpu = sum(roles.values())
        lines.append(
            f"{phase}: {seconds:.1f} s sampled, {cpu:.1f} CPU s, {cpu / seconds:.2f} cores;"
            f" {cpu_by_thread(roles)}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_log_args(parser)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument(
        "--checkpoint-seconds", type=float, default=None, help="as the replay's option"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-phases-") as tmp:
        work = Path(tmp)
        log = log_of(args, work)
        options = ReplayOptions(
            log=log, db=work / "replay.db", ledger=work / "ledger.jsonl",
            report=work / "report.json", partitions=1,
        )  # fmt: skip
        if args.checkpoint_seconds is not None:
            options.checkpoint_seconds = args.checkpoint_seconds
        phases = Phases()
        undo = timing_checkpoints(phases)
        try:
            with PhaseSampler(phases, args.interval):
                started = time.perf_counter()
                run_replay(options)
                wall = time.perf_counter() - started
        finally:
            undo()
    print(report(phases, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
