"""How fast the console answers on a large store (a benchmark, not a test).

    .venv/bin/python benchmarks/console_keys.py /tmp/bench/replay.db [--rounds 10]

Drives the real ConsoleApp headless with Textual's Pilot and measures what an operator
sees, frame by frame:

- first screen: from starting the app until the first frame that shows the Journeys
  view with the store's data;
- views ready: until every other view was made ready ahead (`omniconsole/tui/warmup.py`)
  — the presses start then, as an operator's would, a second or so after the screen;
- key presses: the view keys 1-6 many times; per press, the time until the first frame
  that shows the new view with the store's data for it ("to the frame"). Each frame is
  turned into the terminal's bytes as the real driver does (the headless driver skips
  that), so its cost is in the figure.

Pilot's own round trip per press (it then waits for the app to go idle twice and for a
render, ~60 ms on an idle machine, none of which an operator waits for) and the CPU per
press are printed beside.

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
from typing import NamedTuple

from textual._compositor import CompositorUpdate
from textual.pilot import Pilot
from textual.screen import Screen

from omniconsole.adapters.store.parts import existing_parts
from omniconsole.tui.app import ConsoleApp

KEYS = (("2", "handoffs"), ("3", "caps"), ("4", "channels"), ("6", "decisions"),
        ("5", "customer"), ("1", "journeys"))  # fmt: skip


async def _until(pilot: Pilot[None], condition: object, limit: float) -> None:
    deadline = time.perf_counter() + limit
    while not condition() and time.perf_counter() < deadline:  # type: ignore[operator]
        await pilot.pause(0.001)


class Frames:
    """The frames the app draws, and whether each showed a view with its data."""

    def __init__(self, app: ConsoleApp) -> None:
        self.app = app
        self.shown: list[tuple[float, str | None]] = []
        draw = app._display

        def display(screen: Screen[object], renderable: object) -> None:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # the bytes a terminal gets
                self.shown.append((time.perf_counter(), self.showing()))
            draw(screen, renderable)  # type: ignore[arg-type]

        app._display = display  # type: ignore[method-assign]

    def showing(self) -> str | None:
        """The view on screen, if it has drawn the latest snapshot for it."""
        app, snap = self.app, self.app.latest
        drawn = getattr(app.screen, "_drawn", None)
        if snap is None or not snap.status.ready or snap.request.view != app.current_mode:
            return None
        return app.current_mode if drawn is not None and drawn[0] == snap.seq else None

    def first(self, view: str, since: float) -> float | None:
        """When the first frame after `since` showed `view` with its data."""
        return next((t for t, v in self.shown if v == view and t >= since), None)


class Measured(NamedTuple):
    first_screen: float
    views_ready: float
    #: (key, to the frame, Pilot's round trip, CPU) per press, seconds
    presses: list[tuple[str, float, float, float]]


async def measure(db: Path, rounds: int) -> Measured:
    """Start the console on `db`, wait for the first screen and the views, press keys."""
    started = time.perf_counter()
    app = ConsoleApp(db)
    frames = Frames(app)
    presses: list[tuple[str, float, float, float]] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await _until(pilot, lambda: frames.first("journeys", started) is not None, 30.0)
        first = frames.first("journeys", started)
        if first is None:
            raise SystemExit("the first screen never showed the store's data")
        views = {view for _, view in KEYS} - {"journeys"}
        # (a console from before views were made ready ahead has no such set: not waited)
        await _until(pilot, lambda: views <= getattr(app, "views_prepared", views), 30.0)
        ready = time.perf_counter() - started
        await pilot.pause()
        for _ in range(rounds):
            for key, view in KEYS:
                if view == "journeys":
                    await pilot.press("escape")  # leave the customer pane's box, if focused
                began, began_cpu = time.perf_counter(), time.process_time()
                await pilot.press(key)
                await _until(pilot, lambda v=view, t=began: frames.first(v, t) is not None, 5.0)  # type: ignore[misc]
                seen = frames.first(view, began)
                if seen is None:
                    raise SystemExit(f"key {key!r} did not show {view}")
                await pilot.pause()  # Pilot's round trip ends when the app is idle
                presses.append(
                    (key, seen - began, time.perf_counter() - began,
                     time.process_time() - began_cpu)
                )  # fmt: skip
    return Measured(first - started, ready, presses)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.95)]


def _line(values: list[float]) -> str:
    ms = sorted(x * 1000 for x in values)
    return (
        f"{statistics.median(ms):6.1f} / {_p95([x / 1000 for x in ms]) * 1000:6.1f} / {ms[-1]:6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, nargs="?", default=Path("out/demo.db"))
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(measure(args.db, args.rounds))
    presses = result.presses
    parts = existing_parts(args.db)  # a partitioned store's part files
    size = sum(p.stat().st_size for p in [args.db, *parts])
    print(f"store                {args.db} ({size / 1e6:,.0f} MB in {1 + len(parts)} file(s))")
    print(f"first screen         {result.first_screen * 1000:.0f} ms")
    print(f"views ready          {result.views_ready * 1000:.0f} ms after start")
    print(f"key presses          {len(presses)}")
    print("                     median / p95 / max ms")
    print(f"  to the frame       {_line([p[1] for p in presses])}")
    print(f"  Pilot round trip   {_line([p[2] for p in presses])}")
    print(f"  CPU per press      {_line([p[3] for p in presses])}")
    print("per key, to the frame: median / p95 / max ms · CPU median / p95 ms")
    for key, view in KEYS:
        wall = [p[1] for p in presses if p[0] == key]
        used = sorted(p[3] * 1000 for p in presses if p[0] == key)
        print(f"  {key} {view:<10}       {_line(wall)} · {statistics.median(used):5.1f}"
              f" / {_p95(used):5.1f}")  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average         {load} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    main()
