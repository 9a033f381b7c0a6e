"""Replay throughput: generate a large seeded log, replay it in-process, report the cost.

    .venv/bin/python benchmarks/replay_throughput.py            # 100k customers, ~1M events
    .venv/bin/python benchmarks/replay_throughput.py --customers 5000 --profile

Prints the events replayed, wall seconds, events/s, sends/s (messages sent on every
channel per wall second), peak RSS, peak thread count and ledger lines. Generation
is timed separately and not counted in the replay figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import pstats
import resource
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from omniconsole.domain.generator import write_log
from omniconsole.domain.timeutil import parse_timestamp

__all__ = ["ThreadSampler", "generate", "main", "parse_args", "run"]


def _status(pid: int | str, key: str) -> int:
    """One number from /proc/<pid>/status (`Threads`, or `VmRSS` in kB), 0 off Linux."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _proc_threads() -> int:
    """The kernel's count of this process's threads (/proc/self/status), or 0 off Linux."""
    return _status("self", "Threads")


class ThreadSampler:
    """Samples thread counts and memory every `interval` seconds on a background thread.

    A partitioned replay runs engine processes beside this one, so besides this
    process's own threads it sums threads and resident memory over the whole tree.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_python = threading.active_count()
        self.peak_os = _proc_threads()
        self.peak_all_threads = self.peak_os
        self.peak_all_rss_kb = _status("self", "VmRSS")
        self.peak_processes = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Take one reading (runs on the sampler thread, and once more on stop)."""
        self.peak_python = max(self.peak_python, threading.active_count())
        own = _proc_threads()
        self.peak_os = max(self.peak_os, own)
        children = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        threads = own + sum(_status(pid, "Threads") for pid in children)
        rss = _status("self", "VmRSS") + sum(_status(pid, "VmRSS") for pid in children)
        self.peak_all_threads = max(self.peak_all_threads, threads)
        self.peak_all_rss_kb = max(self.peak_all_rss_kb, rss)
        self.peak_processes = max(self.peak_processes, 1 + len(children))

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _sent(report: dict[str, Any]) -> int:
    channels = report.get("channels", {})
    return sum(int(stats.get("sent", 0)) for stats in channels.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: log size, seed, where to work, and whether to profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--events-per-customer", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-03-02T00:00:00Z", help="ISO 8601 start")
    parser.add_argument(
        "--log", type=Path, help="replay this log instead of generating one (skips generation)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the log, db, ledger and report here (default: temp)"
    )
    parser.add_argument("--config", type=Path, help="config directory (default: shipped)")
    parser.add_argument(
        "--generate-only", action="store_true", help="write the log and stop (no engine needed)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the replay under cProfile; print the top 25"
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="engine processes (default: one per CPU, as `omniconsole replay`)",
    )
    return parser.parse_args(argv)


def generate(args: argparse.Namespace, workdir: Path) -> Path:
    """Write the seeded log into `workdir` (unless --log names one); return its path."""
    if args.log is not None:
        return Path(args.log)
    log = workdir / "events.jsonl"
    started = time.perf_counter()
    lines = write_log(
        log,
        args.customers,
        args.days,
        args.seed,
        parse_timestamp(args.start),
        events_per_customer=args.events_per_customer,
    )
    took = time.perf_counter() - started
    print(f"generated      {lines:,} lines in {took:.2f} s ({lines / took:,.0f}/s) -> {log}")
    return log


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Generate (unless --log), replay, print the figures; return them."""
    # Imported here so --help and --generate-only work without the engine, and a
    # missing engine fails before a million events are written.
    from omniconsole.cli import default_partitions
    from omniconsole.engine.replay import ReplayOptions, run_replay

    log = generate(args, workdir)
    partitions = args.partitions or default_partitions()
    options = ReplayOptions(
        partitions=partitions,
        log=log,
        db=workdir / "replay.db",
        ledger=workdir / "ledger.jsonl",
        report=workdir / "report.json",
        rejects=workdir / "rejects.jsonl",
        config_dir=args.config,
    )
    replay = partial(run_replay, options)
    profiler = cProfile.Profile() if args.profile else None
    with ThreadSampler() as threads:
        started = time.perf_counter()
        report = profiler.runcall(replay) if profiler is not None else replay()
        seconds = time.perf_counter() - started

    events = int(report.get("events", {}).get("read", 0))
    sent = _sent(report)
    figures = {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds if seconds else 0.0,
        "sends": sent,
        "sends_per_s": sent / seconds if seconds else 0.0,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_all_mb": threads.peak_all_rss_kb / 1024,
        "peak_threads": threads.peak_python,
        "peak_os_threads": threads.peak_os,
        "peak_all_threads": threads.peak_all_threads,
        "partitions": partitions,
        "ledger_lines": _count_lines(options.ledger),
    }
    print(f"events         {events:,}")
    print(f"wall seconds   {seconds:.2f}")
    print(f"events/s       {figures['events_per_s']:,.0f}")
    print(f"sends/s        {figures['sends_per_s']:,.0f}  ({sent:,} sent)")
    print(f"partitions     {partitions} ({threads.peak_processes} processes in all)")
    print(
        f"peak RSS       {figures['peak_rss_all_mb']:,.1f} MB all processes (sampled sum);"
        f" {figures['peak_rss_mb']:,.1f} MB this process (incl. generation)"
    )
    print(
        f"peak threads   {threads.peak_all_threads} all processes;"
        f" here {threads.peak_python} (threading), {threads.peak_os} (/proc)"
    )
    print(f"ledger lines   {figures['ledger_lines']:,}")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    step = generate if args.generate_only else run
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        step(args, args.workdir)
        return 0
    with tempfile.TemporaryDirectory(prefix="omniconsole-bench-") as tmp:
        step(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
