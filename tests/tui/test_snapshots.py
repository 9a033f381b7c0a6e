"""Snapshots of every view at 80×24 and 160×48 (a replayed store, no wall clocks shown)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_support import wait_for

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.screens.help import HelpScreen

SIZES = [(80, 24), (160, 48)]


def _before(keys: tuple[str, ...], view: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        if keys:
            await pilot.press(*keys)

        def ready() -> bool:
            snap = app.latest
            if snap is None or not snap.status.ready or snap.request.view != view:
                return False
            if view == "customer":
                return snap.customer is not None and snap.customer.record is not None
            if view in ("decisions", "handoffs"):
                return snap.page is not None
            return True

        await wait_for(pilot, ready)
        await pilot.pause()

    return run_before


VIEWS: list[tuple[str, tuple[str, ...]]] = [
    ("journeys", ()),
    ("handoffs", ("2",)),
    ("caps", ("3",)),
    ("channels", ("4",)),
    ("customer", ("colon", *"customer c-1", "enter")),
    ("decisions", ("6",)),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("view", "keys"), VIEWS, ids=[v for v, _ in VIEWS])
def test_view_snapshot(
    snap_compare: Any, story: Path, view: str, keys: tuple[str, ...], size: tuple[int, int]
) -> None:
    app = ConsoleApp(story, poll_interval=0.05, store_label="/data/story.db")
    assert snap_compare(app, terminal_size=size, run_before=_before(keys, view))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_outcomes_view_snapshot(
    snap_compare: Any, planted: tuple[Path, dict[str, Any]], size: tuple[int, int]
) -> None:
    app = ConsoleApp(planted[0], poll_interval=0.05, store_label="/data/planted.db")
    assert snap_compare(app, terminal_size=size, run_before=_before(("7",), "outcomes"))


def test_help_fits_80x24_snapshot(snap_compare: Any, story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05, store_label="/data/story.db")

    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.latest is not None)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("end")  # its last lines can be reached
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_missing_store_snapshot(snap_compare: Any) -> None:
    # the path is in the message, so show a fixed one (read-only: it is never created)
    app = ConsoleApp(Path("/data/missing.db"), poll_interval=0.05)

    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.latest is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
