"""What attaching a console costs the engine: one replay alone, one with consoles watching.

    .venv/bin/python benchmarks/console_overhead.py                 # 20k customers, ~200k events
    .venv/bin/python benchmarks/console_overhead.py --consoles 3    # several agents attached

Each replay runs as its own process (as an operator would run it); each console is a
headless `ConsoleApp` process attached read-only to the same store, polling it as the
real console does. Prints wall time and events/s for both, the overhead, and the CPU
the consoles used beside the replay's own: on a shared machine the wall times move
with other people's work, the CPU seconds do not.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from omniconsole.domain.generator import write_log

CONSOLE = (
    "import sys; from pathlib import Path; from omniconsole.tui.app import ConsoleApp;"
    "ConsoleApp(Path(sys.argv[1])).run(headless=True)"
)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks


def _settled(watchers: list[subprocess.Popen[bytes]], limit: float = 30.0) -> None:
    """Wait until every console has started and sits idle (under 5 % of a core)."""
    deadline = time.monotonic() + limit
    while watchers and time.monotonic() < deadline:
        before = [_cpu_seconds(w.pid) for w in watchers]
        time.sleep(0.5)
        if all(_cpu_seconds(w.pid) - b < 0.025 for w, b in zip(watchers, before, strict=True)):
            return


def replay(log: Path, work: Path, name: str, consoles: int) -> tuple[float, int, float, float]:
    """Run one replay (with `consoles` attached); return (wall seconds, events applied,
    the replay's CPU seconds, the consoles' CPU seconds while it ran)."""
    db = work / f"{name}.db"
    watchers = [
        subprocess.Popen([sys.executable, "-c", CONSOLE, str(db)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for _ in range(consoles)
    ]  # fmt: skip
    console_cpu = 0.0
    try:
        _settled(watchers)  # a console's start-up (imports, first screen) is not the cost
        before = [_cpu_seconds(w.pid) for w in watchers]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "omniconsole", "replay", str(log), "--db", str(db),
             "--ledger", str(work / f"{name}.ledger.jsonl"),
             "--report", str(work / f"{name}.report.json")],
            check=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        replay_cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
        console_cpu = sum(_cpu_seconds(w.pid) - b for w, b in zip(watchers, before, strict=True))
    finally:
        for watcher in watchers:
            alive = watcher.poll() is None
            watcher.terminate()
            watcher.wait(timeout=30)
            if not alive:
                raise SystemExit("a console exited during the replay: it was not attached")
    report = orjson.loads((work / f"{name}.report.json").read_bytes())
    return wall, int(report["events"]["applied"]), replay_cpu, console_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events-per-customer", type=float, default=10)
    parser.add_argument("--consoles", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "events.jsonl"
        write_log(log, args.customers, 14, 1, datetime(2026, 3, 2, tzinfo=UTC),
                  events_per_customer=args.events_per_customer)  # fmt: skip
        alone, attached, shares = [], [], []
        events = 0
        for round_ in range(args.rounds):
            wall, events, _, _ = replay(log, work, f"alone{round_}", 0)
            alone.append(wall)
            wall, events, replay_cpu, console_cpu = replay(
                log, work, f"watched{round_}", args.consoles
            )
            attached.append(wall)
            shares.append((replay_cpu, console_cpu))
        best_alone, best_attached = min(alone), min(attached)
        print(f"events replayed          {events:,}")
        print(f"alone                    {best_alone:6.2f} s  {events / best_alone:9,.0f} events/s")
        print(f"with {args.consoles} console(s)        "
              f"{best_attached:6.2f} s  {events / best_attached:9,.0f} events/s")  # fmt: skip
        print(f"cost of attaching        {100 * (best_attached / best_alone - 1):+.1f} % (wall)")
        replay_cpu, console_cpu = min(shares, key=lambda s: s[1] / s[0])
        median = sorted(c / r for r, c in shares)[len(shares) // 2]
        print(
            f"consoles' CPU            {console_cpu:6.2f} s beside the replay's {replay_cpu:.2f} s"
            f" ({100 * median:.1f} % median over {len(shares)} rounds)"
        )


if __name__ == "__main__":
    main()
