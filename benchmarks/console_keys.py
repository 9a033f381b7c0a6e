"""How fast the console answers on a large store (a benchmark, not a test).

    .venv/bin/python benchmarks/console_keys.py /tmp/bench/replay.db [--rounds 10]

Drives the real ConsoleApp headless with Textual's Pilot and measures what an operator
feels:

- first screen: from starting the app until the Journeys view shows the store's data;
- key presses: the view keys 1-6 (and back) many times; per press, the wall time
  until the new view is on top and shows data from the store for it.

Targets (issue "The console, round 2", the 1M-event store): first screen under 300 ms,
key press p95 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from textual.pilot import Pilot

from omniconsole.adapters.store.parts import existing_parts
from omniconsole.tui.app import ConsoleApp

KEYS = (("2", "handoffs"), ("3", "caps"), ("4", "channels"), ("6", "decisions"),
        ("5", "customer"), ("1", "journeys"))  # fmt: skip


async def _until(pilot: Pilot[None], condition: object, limit: float) -> None:
    deadline = time.perf_counter() + limit
    while not condition() and time.perf_counter() < deadline:  # type: ignore[operator]
        await pilot.pause(0.001)


async def measure(
    db: Path, rounds: int
) -> tuple[float, list[tuple[str, float]], list[tuple[str, float]]]:
    """(first screen seconds, (key, seconds) per press, (key, CPU seconds) per press).

    The CPU time (this process, every thread) is what a press costs on an idle machine;
    on a busy one the wall time also holds the waits for a core."""
    started = time.perf_counter()
    app = ConsoleApp(db)
    latencies: list[tuple[str, float]] = []
    cpu: list[tuple[str, float]] = []
    async with app.run_test(size=(160, 48)) as pilot:

        def shows(view: str) -> bool:
            snap = app.latest
            return (
                app.current_mode == view
                and snap is not None
                and snap.status.ready
                and snap.request.view == view
            )

        await _until(pilot, lambda: shows("journeys"), 30.0)
        await pilot.pause()  # rendered
        first = time.perf_counter() - started
        for _ in range(rounds):
            for key, view in KEYS:
                if view == "journeys":
                    await pilot.press("escape")  # leave the customer pane's box, if focused
                began, began_cpu = time.perf_counter(), time.process_time()
                await pilot.press(key)
                await _until(pilot, lambda v=view: shows(v), 5.0)  # type: ignore[misc]
                if not shows(view):
                    raise SystemExit(f"key {key!r} did not show {view}")
                await pilot.pause()  # the view has rendered
                latencies.append((key, time.perf_counter() - began))
                cpu.append((key, time.process_time() - began_cpu))
    return first, latencies, cpu


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, nargs="?", default=Path("out/demo.db"))
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    first, latencies, cpu = asyncio.run(measure(args.db, args.rounds))
    ms = sorted(x * 1000 for _, x in latencies)
    cpu_ms = sorted(x * 1000 for _, x in cpu)
    parts = existing_parts(args.db)  # a partitioned store's part files
    size = sum(p.stat().st_size for p in [args.db, *parts])
    print(f"store                {args.db} ({size / 1e6:,.0f} MB in {1 + len(parts)} file(s))")
    print(f"first screen         {first * 1000:.0f} ms")
    print(f"key presses          {len(ms)}")
    print(f"median / p95 / max   {statistics.median(ms):.1f} / {ms[int(len(ms) * 0.95)]:.1f}"
          f" / {ms[-1]:.1f} ms")  # fmt: skip
    print(f"CPU per press        median {statistics.median(cpu_ms):.1f} / p95"
          f" {cpu_ms[int(len(cpu_ms) * 0.95)]:.1f} ms")  # fmt: skip
    print("per key              median / p95 / max ms (wall) · CPU median / p95 ms")
    for key, view in KEYS:
        wall = [x * 1000 for k, x in latencies if k == key]
        used = [x * 1000 for k, x in cpu if k == key]
        print(f"  {key} {view:<10}       {statistics.median(wall):6.1f} / {_p95(wall):6.1f}"
              f" / {max(wall):6.1f} · {statistics.median(used):5.1f} / {_p95(used):5.1f}")  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average         {load} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    main()
