"""Views are made ready while the operator reads the first screen: a view key then shows
a screen that already holds the store's data (Pilot tests on `worlds.STORY`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_support import wait_for

from omniconsole.tui.app import ConsoleApp

OTHER_VIEWS = {"handoffs", "caps", "channels", "customer", "decisions", "outcomes"}


def _rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.asyncio
async def test_every_other_view_is_filled_before_its_key_is_pressed(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.views_prepared >= OTHER_VIEWS)
        assert app.current_mode == "journeys"  # made ready off screen, never shown
        ready = app.get_screen("prepared-decisions")
        rows_before = _rows(ready.query_one("#decisions-table", DataTable))
        assert rows_before  # the store's decisions, before any key

        await pilot.press("6")
        assert app.screen is ready  # the screen made ready is the one the key shows
        await wait_for(
            pilot, lambda: app.latest is not None and app.latest.request.view == "decisions"
        )
        await pilot.pause()
        assert _rows(app.screen.query_one("#decisions-table", DataTable)) == rows_before


@pytest.mark.asyncio
async def test_a_key_pressed_before_the_views_are_ready_shows_its_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")  # at once: nothing made ready yet
        await wait_for(pilot, lambda: app.latest is not None and app.latest.request.view == "caps")
        await pilot.pause()
        assert app.current_mode == "caps"
        assert _rows(app.screen.query_one("#reasons-table", DataTable))
        await wait_for(pilot, lambda: OTHER_VIEWS - {"caps"} <= app.views_prepared)
        assert "caps" not in app.views_prepared  # shown first: left to its own updates
        await pilot.press("2")
        await wait_for(
            pilot, lambda: app.latest is not None and app.latest.request.view == "handoffs"
        )
        await pilot.pause()
        assert _rows(app.screen.query_one("#handoffs-table", DataTable))


@pytest.mark.asyncio
async def test_views_are_made_ready_only_once_a_watched_replay_has_finished(
    tmp_path: Path,
) -> None:
    """While a replay commits several times a second, views made ready would be out of
    date before their key came, and would take CPU from the replay."""
    from omniconsole.engine.replay import ReplayOptions
    from omniconsole.tui.demo import DemoRunner

    log = Path(__file__).resolve().parents[2] / "examples" / "sample.jsonl"
    db = tmp_path / "demo.db"
    options = ReplayOptions(log=log, db=db, ledger=tmp_path / "l.jsonl", report=tmp_path / "r.json")
    runner = DemoRunner(log, db, options=options)  # paced: an hour of the log per second
    app = ConsoleApp(db, demo=runner, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.latest is not None
                and app.latest.status.status == "running"
                and app.snapshots_seen >= 5
            ),
            timeout=30,
        )
        assert app.views_prepared == set()
        runner.pacer.set_speed(None)  # run the rest at full speed
        await wait_for(pilot, lambda: app._demo_done, timeout=60)
        await wait_for(pilot, lambda: app.views_prepared >= OTHER_VIEWS, timeout=30)
