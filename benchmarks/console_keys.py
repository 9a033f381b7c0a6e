"""How fast the console answers keys on a large store (a benchmark, not a test).

    .venv/bin/python benchmarks/console_keys.py /tmp/bench/replay.db

Drives the real ConsoleApp headless with Textual's Pilot: presses the view keys 1-5
(and back) many times and measures, per press, the wall time until the new view is
the screen on top — the latency an operator feels. Queries run on the poll thread,
so a big store must not slow this down.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from omniconsole.adapters.store.parts import existing_parts
from omniconsole.tui.app import ConsoleApp


async def measure(db: Path, rounds: int) -> list[float]:
    app = ConsoleApp(db)
    latencies: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)  # first snapshot
        for _ in range(rounds):
            for key, mode in (("2", "handoffs"), ("3", "caps"), ("4", "channels"),
                              ("5", "customer"), ("1", "journeys")):  # fmt: skip
                if mode == "journeys":
                    await pilot.press("escape")  # leave the customer pane's search box
                started = time.perf_counter()
                await pilot.press(key)
                deadline = started + 5.0
                while app.current_mode != mode and time.perf_counter() < deadline:
                    await pilot.pause(0.001)
                if app.current_mode != mode:
                    raise SystemExit(f"key {key!r} did not open {mode}")
                await pilot.pause()  # the view has rendered
                latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/demo.db")
    latencies = asyncio.run(measure(db, rounds=10))
    ms = sorted(x * 1000 for x in latencies)
    parts = existing_parts(db)  # a partitioned store's part files
    size = sum(p.stat().st_size for p in [db, *parts])
    print(f"store                {db} ({size / 1e6:,.0f} MB in {1 + len(parts)} file(s))")
    print(f"key presses          {len(ms)}")
    print(f"median / p95 / max   {statistics.median(ms):.1f} / {ms[int(len(ms) * 0.95)]:.1f}"
          f" / {ms[-1]:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
