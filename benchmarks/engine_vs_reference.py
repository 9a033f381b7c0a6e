"""The engine's per-core speed as a ratio to a plain reference loop (issue "Per-core speed").

    .venv/bin/python benchmarks/engine_vs_reference.py                  # 100k customers, both workloads
    .venv/bin/python benchmarks/engine_vs_reference.py --customers 5000 # a quick run

For each workload it generates one seeded log, then replays that same log, back to
back, with `reference_loop.py` (one plain single-threaded program) and with the engine
at `--partitions 1` and at its default partition count, checks that all of them wrote
the same ledger bytes and the same event counts, and prints events/s and the engine's
ratio to the reference. Workloads: `bench` (the throughput benchmark's log, ~10 events
per customer) and `decision-heavy` (`omniconsole generate --mix decision-heavy`: ~5.5
events per customer, most of them causing a decision, many deferred).

Targets of the issue: the engine at `--partitions 1` >= 1.0x the reference, at the
default partitions >= 2.0x. Exit status 1 when any ledger or count differs.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import io
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
import replay_throughput
from reference_loop import run_reference
from replay_throughput import cpu_by_thread

from omniconsole.domain.generator import write_log
from omniconsole.domain.timeutil import parse_timestamp


@dataclass(frozen=True)
class Workload:
    name: str
    mix: str
    events_per_customer: float | None  # None: the mix's own


WORKLOADS = {
    "bench": Workload("bench", "default", 10.0),  # what replay_throughput.py replays
    "decision-heavy": Workload("decision-heavy", "decision-heavy", None),
}


@dataclass
class Run:
    """One replay of a workload's log: who ran it and what it measured."""

    runner: str
    events: int
    seconds: float
    cpu_seconds: float  # user + system, over every process of the run
    peak_rss_mb: float
    ledger: Path
    counts: dict[str, int]
    #: CPU seconds by thread role in the benchmark's own process (the whole engine at
    #: one partition; the coordinator at more); empty for the reference
    threads: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-03-02T00:00:00Z", help="ISO 8601 start")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="the second engine run's partitions (default: one per CPU, as `omniconsole replay`)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="replays per runner; the best counts")
    parser.add_argument("--workdir", type=Path, help="keep logs and ledgers here (default: temp)")
    parser.add_argument(
        "--keyword-is-engagement",
        dest="spec_keywords",
        action="store_false",
        help="the reference reads a STOP/START reply as engagement too, as the engine did"
        " before it followed SPEC §5 (2026-11-30: consent only, the default of both)",
    )
    parser.add_argument("--verbose", action="store_true", help="show each engine run's own figures")
    return parser.parse_args(argv)


def generate(workload: Workload, args: argparse.Namespace, workdir: Path) -> Path:
    log = workdir / f"{workload.name}.jsonl"
    started = time.perf_counter()
    lines = write_log(
        log, args.customers, args.days, args.seed, parse_timestamp(args.start),
        events_per_customer=workload.events_per_customer, mix=workload.mix,
    )  # fmt: skip
    took = time.perf_counter() - started
    print(f"{workload.name}: generated {lines:,} lines in {took:.1f} s -> {log}", flush=True)
    return log


def _peak_rss_mb() -> float:
    """This process's peak resident memory. `VmHWM`, not `ru_maxrss`: on Linux the latter
    keeps the parent's size from before the fork."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds(*who: int) -> float:
    """User + system CPU time of `who` (resource.RUSAGE_SELF, RUSAGE_CHILDREN) so far."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, who))


def _reference_in_child(log: Path, ledger: Path, keyword_is_engagement: bool) -> tuple[Any, ...]:
    """Runs in a fresh process, so its time and peak memory are its own."""
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    counts = run_reference(log, ledger, keyword_is_engagement=keyword_is_engagement)
    seconds = time.perf_counter() - started
    return counts, seconds, _cpu_seconds(resource.RUSAGE_SELF) - cpu, _peak_rss_mb()


def run_reference_once(log: Path, workdir: Path, spec_keywords: bool) -> Run:
    ledger = workdir / "reference.ledger.jsonl"
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        counts, seconds, cpu, rss = pool.submit(
            _reference_in_child, log, ledger, not spec_keywords
        ).result()
    return Run("reference", counts["read"], seconds, cpu, rss, ledger, counts)


def run_engine_once(log: Path, workdir: Path, partitions: int, verbose: bool) -> Run:
    """The engine as `replay_throughput.py --log LOG --partitions N` measures it."""
    out = workdir / f"engine-p{partitions}"
    out.mkdir(parents=True, exist_ok=True)
    args = replay_throughput.parse_args(["--log", str(log), "--partitions", str(partitions)])
    printed = io.StringIO()
    # partition processes are joined before `run` returns: their time is in RUSAGE_CHILDREN
    cpu = _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    with contextlib.redirect_stdout(sys.stdout if verbose else printed):
        figures = replay_throughput.run(args, out)
    cpu = _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) - cpu
    report = orjson.loads((out / "report.json").read_bytes())
    runner = f"engine, {partitions} partition{'s' if partitions > 1 else ''}"
    return Run(
        runner, figures["events"], figures["seconds"], cpu, figures["peak_rss_all_mb"],
        out / "ledger.jsonl", report["events"], figures["thread_cpu_s"],
    )  # fmt: skip


def compare(workload: Workload, args: argparse.Namespace, workdir: Path) -> list[Run]:
    """Replay one workload's log with every runner, back to back; the rows of its table."""
    from omniconsole.cli import default_partitions

    log = generate(workload, args, workdir)
    partitions = [1, args.partitions or default_partitions()]
    if partitions[1] == 1:
        partitions.pop()
    runs: list[list[Run]] = [[] for _ in range(1 + len(partitions))]
    for _ in range(args.rounds):  # interleaved: a busy spell on the machine hits all alike
        runs[0].append(run_reference_once(log, workdir, args.spec_keywords))
        for index, count in enumerate(partitions, start=1):
            runs[index].append(run_engine_once(log, workdir, count, args.verbose))
    return [min(runner, key=lambda run: run.seconds) for runner in runs]


def print_table(workload: str, rows: list[Run]) -> bool:
    """One workload's table; returns whether every ledger and count matched the reference."""
    reference = rows[0]
    lines = sum(1 for _ in reference.ledger.open("rb"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{workload}: {reference.events:,} events, {lines:,} ledger lines"
        f" (load average now {load})"
    )
    print(
        f"  {'runner':<22}{'seconds':>9}{'events/s':>11}{'vs reference':>14}"
        f"{'CPU s':>8}{'per CPU s':>11}{'peak RSS':>11}  ledger"
    )
    same = True
    for row in rows:
        if row is reference:
            verdict = "(the yardstick)"
        else:
            identical = filecmp.cmp(reference.ledger, row.ledger, shallow=False)
            counts_match = all(row.counts.get(k) == v for k, v in reference.counts.items()
                               if k != "ledger_lines")  # fmt: skip
            same = same and identical and counts_match
            verdict = "identical" if identical else f"DIFFERS from {reference.ledger}"
            if not counts_match:
                verdict += f"; counts differ: {row.counts} vs {reference.counts}"
        ratio = row.events_per_s / reference.events_per_s if reference.events_per_s else 0.0
        # events per CPU second, as a ratio too: steadier than wall time on a busy machine
        per_cpu = reference.cpu_seconds / row.cpu_seconds if row.cpu_seconds else 0.0
        print(
            f"  {row.runner:<22}{row.seconds:>9.2f}{row.events_per_s:>11,.0f}{ratio:>13.2f}x"
            f"{row.cpu_seconds:>8.1f}{per_cpu:>10.2f}x"
            f"{row.peak_rss_mb:>8,.0f} MB  {verdict}"
        )
    for row in rows:
        if row.threads:  # where the CPU went, thread by thread
            here = "the engine" if row.runner.endswith(" 1 partition") else "the coordinator"
            print(f"  {row.runner}, CPU by thread of {here}: {cpu_by_thread(row.threads)}")
    sys.stdout.flush()
    return same


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keywords = "consent only (SPEC)" if args.spec_keywords else "also engagement (the engine's)"
    print(f"reference loop: STOP/START replies read as {keywords}")
    same: list[bool] = []
    with contextlib.ExitStack() as stack:
        if args.workdir is not None:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="refloop-")))
        for name in args.workloads:
            sub = workdir / name
            sub.mkdir(exist_ok=True)
            same.append(print_table(name, compare(WORKLOADS[name], args, sub)))
    print("\ntargets: engine at 1 partition >= 1.00x the reference; at the default >= 2.00x")
    if not all(same):
        print("ledgers or counts differ: the ratios compare different work", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
