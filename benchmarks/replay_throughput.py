"""Replay throughput: generate a large seeded log, replay it in-process, report the cost.

    .venv/bin/python benchmarks/replay_throughput.py            # 100k customers, ~1M events
    .venv/bin/python benchmarks/replay_throughput.py --customers 5000 --profile
    .venv/bin/python benchmarks/replay_throughput.py --log L --pg --ray-nodes 2   # see below

`--pg` replays into a throwaway PostgreSQL (pgserver, default durability); `--db URL`
into a PostgreSQL of yours. `--ray-nodes N` starts a simulated N-node Ray cluster on
this machine and runs one partition per node on it; `--ray ADDRESS` uses a running one.

Prints the events replayed, wall seconds, events/s, sends/s (messages sent on every
channel per wall second), peak RSS, peak thread count and ledger lines. Generation
is timed separately and not counted in the replay figures.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import resource
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from proc_tree import children as descendants
from proc_tree import pss_kb

from omniconsole.domain.generator import write_log
from omniconsole.domain.timeutil import parse_timestamp

__all__ = ["ThreadSampler", "cpu_by_thread", "generate", "main", "parse_args", "run", "thread_role"]


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

    def __init__(self, interval: float = 0.05, roots: tuple[int, ...] = ()) -> None:
        self.interval = interval
        self.roots = roots  # other process trees to count (a PostgreSQL server)
        self.peak_roots_rss_kb = 0
        self.peak_all_pss_kb = 0
        self._samples = 0
        #: pid -> CPU seconds it had used when last seen (summed at the end: the CPU the
        #: whole run cost, which a busy shared machine distorts less than wall time)
        self.cpu_seen: dict[int, float] = {}
        self.cpu_start: dict[int, float] = {}
        #: this process's threads: (native id, name) -> (role, CPU seconds at the first
        #: and the last reading); which thread the time went to (see `cpu_by_role`). The
        #: name too: the kernel may give an ended thread's id to a new one
        self.thread_cpu: dict[tuple[int, str], tuple[str, float, float]] = {}
        self._first = True
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
        # every descendant: partition processes, and a simulated Ray cluster's GCS,
        # raylets and actor workers (Ray's processes are not multiprocessing children)
        others = [q for root in self.roots for q in (root, *descendants(root))]
        children = descendants(os.getpid()) + others
        threads = own + sum(_status(pid, "Threads") for pid in children)
        rss = _status("self", "VmRSS") + sum(_status(pid, "VmRSS") for pid in children)
        self.peak_roots_rss_kb = max(
            self.peak_roots_rss_kb, sum(_status(pid, "VmRSS") for pid in others)
        )
        for pid in [os.getpid(), *children]:
            used = _cpu_seconds(pid)
            if used is not None:
                # processes there at the first sample count from then; later ones whole
                self.cpu_start.setdefault(pid, used if self._first else 0.0)
                self.cpu_seen[pid] = used
        if self._samples % 4 == 0:  # ~20 µs a thread
            self._sample_threads()
        if self._samples % 20 == 0:  # ~1 ms a process: not every 50 ms
            pss = pss_kb(os.getpid()) + sum(pss_kb(pid) for pid in children)
            self.peak_all_pss_kb = max(self.peak_all_pss_kb, pss)
        self._samples += 1
        self._first = False
        self.peak_all_threads = max(self.peak_all_threads, threads)
        self.peak_all_rss_kb = max(self.peak_all_rss_kb, rss)
        self.peak_processes = max(self.peak_processes, 1 + len(children))

    def _sample_threads(self) -> None:
        for tid, (name, used) in thread_cpu(self._thread).items():
            key = (tid, name)
            known = self.thread_cpu.get(key)
            start = known[1] if known else (used if self._first else 0.0)
            self.thread_cpu[key] = (thread_role(name), start, used)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds this process's threads used, by role, largest first (threads that
        ended between readings lose at most a reading's interval, 0.2 s)."""
        roles: dict[str, float] = {}
        for role, start, used in self.thread_cpu.values():
            roles[role] = roles.get(role, 0.0) + used - start
        return dict(sorted(roles.items(), key=lambda item: -item[1]))

    def __enter__(self) -> ThreadSampler:
        self.sample()  # what runs already (a cluster, a server) counts from now
        self._thread.start()
        return self

    @property
    def cpu_seconds(self) -> float:
        """CPU used by every process seen, since the first sample."""
        return sum(used - self.cpu_start.get(pid, 0.0) for pid, used in self.cpu_seen.items())

    def __exit__(self, *exc: object) -> None:
        self._samples = 0  # a PSS reading too
        self.sample()
        self._stop.set()
        self._thread.join()


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: a thread's name (less its number) -> what it does in the engine
_ROLES = {
    "MainThread": "replay driver",
    "ProfileShardActor": "profile shard",
    "FatigueGovernorActor": "governor",
    "ChannelDispatcherActor": "dispatchers",
    "StoreWriterActor": "store writer",
    "Thread (_connection_worker_thread)": "SQLite",
}


def thread_role(name: str) -> str:
    """What a thread named `name` does: pykka names actors' threads `Class-N`, aiosqlite's
    is `Thread-N (_connection_worker_thread)`."""
    key = re.sub(r"-\d+(?= |$)", "", name, count=1)  # less the thread's number
    return _ROLES.get(key, key)


def _cpu_seconds(pid: int | str) -> float | None:
    """User + system CPU seconds `pid` has used (/proc/<pid>/stat; a thread's:
    `self/task/<tid>`), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def thread_cpu(sampler: threading.Thread) -> dict[int, tuple[str, float]]:
    """Every thread of this process but `sampler`: native id -> (name, CPU seconds of
    its own so far, from `/proc/self/task`)."""
    seen: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None or thread is sampler:
            continue
        used = _cpu_seconds(f"self/task/{tid}")  # the thread's own times
        if used is not None:
            seen[tid] = (thread.name, used)
    return seen


def cpu_by_thread(roles: dict[str, float]) -> str:
    """`roles` (CPU seconds by thread role) as one line, the largest first."""
    ranked = sorted(roles.items(), key=lambda item: -item[1])
    return ", ".join(f"{role} {seconds:.1f} s" for role, seconds in ranked if seconds >= 0.05)


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
        help="engine processes (default: one per CPU, as `omniconsole replay`; with Ray:"
        " one per node)",
    )
    parser.add_argument("--db", help="replay into this store (default: a SQLite file)")
    parser.add_argument(
        "--pg", action="store_true", help="replay into a throwaway PostgreSQL (pgserver)"
    )
    parser.add_argument("--ray", metavar="ADDRESS", help="partitions as Ray actors (or 'auto')")
    parser.add_argument(
        "--ray-nodes", type=int, default=0, metavar="N",
        help="start a simulated N-node Ray cluster on this machine for the run",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="append the figures as one JSON line here")
    parser.add_argument(
        "--expect-ledger", type=Path, help="compare the ledger's bytes with this file's"
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
    import omniconsole.engine.replay  # noqa: F401

    log = generate(args, workdir)
    with contextlib.ExitStack() as stack:
        db: str | Path = args.db or workdir / "replay.db"
        roots: tuple[int, ...] = ()
        if args.pg:
            from bench_peers import postgres

            db, postmaster = stack.enter_context(postgres(workdir))
            roots = (postmaster,)
        ray = args.ray
        if args.ray_nodes:
            from bench_peers import ray_cluster

            ray = stack.enter_context(ray_cluster(args.ray_nodes))
        return _replay(args, workdir, log, db, ray, roots)


def _replay(
    args: argparse.Namespace,
    workdir: Path,
    log: Path,
    db: str | Path,
    ray: str | None,
    roots: tuple[int, ...],
) -> dict[str, Any]:
    from omniconsole.cli import default_partitions
    from omniconsole.engine.replay import ReplayOptions, run_replay

    partitions = args.partitions or (0 if ray else default_partitions())
    options = ReplayOptions(
        partitions=partitions,
        ray=ray,
        log=log,
        db=db,
        ledger=workdir / "ledger.jsonl",
        report=workdir / "report.json",
        rejects=workdir / "rejects.jsonl",
        config_dir=args.config,
    )
    replay = partial(run_replay, options)
    profiler = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()
    with ThreadSampler(roots=roots) as threads:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        report = profiler.runcall(replay) if profiler is not None else replay()
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    # this process's CPU: with partitions elsewhere, what the coordinator costs
    driver_cpu = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)

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
        "peak_pss_all_mb": threads.peak_all_pss_kb / 1024,
        "peak_rss_postgres_mb": threads.peak_roots_rss_kb / 1024,
        "store": "postgresql" if isinstance(db, str) and db.startswith("postgres") else "sqlite",
        "ray_nodes": args.ray_nodes,
        "processes": threads.peak_processes,
        "driver_cpu_s": driver_cpu,
        "all_cpu_s": threads.cpu_seconds,
        "load_average": os.getloadavg(),
        "load_average_before": load_before,
        "peak_threads": threads.peak_python,
        "peak_os_threads": threads.peak_os,
        "peak_all_threads": threads.peak_all_threads,
        "partitions": partitions,
        "ledger_lines": _count_lines(options.ledger),
        "thread_cpu_s": threads.cpu_by_role(),
    }
    print(f"events         {events:,}")
    print(f"wall seconds   {seconds:.2f}")
    print(f"events/s       {figures['events_per_s']:,.0f}")
    print(f"sends/s        {figures['sends_per_s']:,.0f}  ({sent:,} sent)")
    print(f"partitions     {partitions or 'one per node'} ({threads.peak_processes} processes"
          f" in all){f' on {args.ray_nodes} Ray nodes' if args.ray_nodes else ''}")  # fmt: skip
    print(
        f"peak RSS       {figures['peak_rss_all_mb']:,.1f} MB all processes (sampled sum;"
        f" PSS {figures['peak_pss_all_mb']:,.1f} MB; PostgreSQL's"
        f" {figures['peak_rss_postgres_mb']:,.1f} MB);"
        f" {figures['peak_rss_mb']:,.1f} MB this process (incl. generation)"
    )
    print(
        f"this process   {driver_cpu:.1f} s of CPU ({driver_cpu / max(events, 1) * 1e6:.1f} µs/event)"
    )
    print(f"all processes  {threads.cpu_seconds:.1f} s of CPU"
          f" ({threads.cpu_seconds / max(events, 1) * 1e6:.1f} µs/event)")  # fmt: skip
    print(f"by thread here {cpu_by_thread(figures['thread_cpu_s'])}")
    print(f"load average   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"peak threads   {threads.peak_all_threads} all processes;"
        f" here {threads.peak_python} (threading), {threads.peak_os} (/proc)"
    )
    print(f"ledger lines   {figures['ledger_lines']:,}")
    if args.expect_ledger is not None:
        same = options.ledger.read_bytes() == args.expect_ledger.read_bytes()
        figures["ledger_as_expected"] = same
        print(
            f"ledger         {'the same bytes as' if same else 'DIFFERS from'} {args.expect_ledger}"
        )
    if figures["store"] == "postgresql":
        figures["pg_mb"] = _pg_sizes(str(db))
        print(
            "PostgreSQL     " + ", ".join(f"{k} {v:,.1f} MB" for k, v in figures["pg_mb"].items())
        )
    if args.json is not None:
        with args.json.open("a") as out_json:
            out_json.write(json.dumps(figures) + "\n")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return figures


def _pg_sizes(url: str) -> dict[str, float]:
    """MB on disk per table (every part's schema added up, indexes included), and the
    whole database: what a capacity plan scales up."""
    import psycopg

    query = (
        "SELECT c.relname, sum(pg_total_relation_size(c.oid)) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname LIKE 'omniconsole%' GROUP BY 1 ORDER BY 2 DESC"
    )
    with psycopg.connect(url) as conn:
        sizes = {str(name): int(size) / 1e6 for name, size in conn.execute(query)}
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    sizes["database"] = int(row[0]) / 1e6 if row else 0.0
    return sizes


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
