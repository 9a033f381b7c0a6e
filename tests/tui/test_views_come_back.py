"""A view switched away from and back to is drawn as it should be now: in the theme
chosen meanwhile, with its cursor as the focus says, with the rows it showed.

The console keeps each view's rendered table lines across view keys and styles a
view opened later from the stylesheet as it stands (both for speed); these tests
hold what an operator sees to what a freshly drawn table would show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style
from textual.geometry import Region
from textual.widgets import DataTable
from tui_support import plain, wait_for

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.widgets import KeyHints


def _ready_for(app: ConsoleApp, view: str) -> bool:
    snap = app.latest
    return (
        app.current_mode == view
        and snap is not None
        and snap.status.ready
        and snap.request.view == view
    )


def _cursor_line(table: DataTable[object]) -> tuple[str, Style | None]:
    """The text and background of the table's cursor row, as the screen draws it."""
    y = table.cursor_row + (1 if table.show_header else 0)
    strip = table.render_lines(Region(0, y, table.size.width, 1))[0]
    styles = [s.style for s in strip if s.style is not None and s.style.bgcolor is not None]
    return strip.text, (styles[0] if styles else None)


def _journeys_table(app: ConsoleApp) -> DataTable[object]:
    return app.screen.query_one("#journeys-table", DataTable)


@pytest.mark.asyncio
async def test_a_view_shown_again_is_drawn_in_the_theme_chosen_meanwhile(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        text, dark = _cursor_line(_journeys_table(app))
        await pilot.press("2")
        await wait_for(pilot, lambda: _ready_for(app, "handoffs"))
        await pilot.press("t")  # the theme changes while Journeys is away
        await pilot.pause()
        await pilot.press("1")
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        text_after, light = _cursor_line(_journeys_table(app))
        assert app.theme == "textual-light"
        assert text_after == text and "fraud_alert" in text
        assert dark is not None and light is not None
        assert light.bgcolor != dark.bgcolor


@pytest.mark.asyncio
async def test_the_cursor_row_shows_whether_the_table_has_the_focus(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        table = _journeys_table(app)
        assert table.has_focus
        _, focused = _cursor_line(table)
        await pilot.press("slash")  # the filter box takes the focus
        await pilot.pause()
        assert not table.has_focus
        _, blurred = _cursor_line(table)
        await pilot.press("escape")
        await pilot.pause()
        assert table.has_focus
        _, again = _cursor_line(table)
        assert focused is not None and blurred is not None
        assert blurred.bgcolor != focused.bgcolor
        assert again == focused


def _header_styles(table: DataTable[object]) -> set[tuple[object, ...]]:
    """The colours of the header's labels (not which column they name)."""
    strip = table.render_lines(Region(0, 0, table.size.width, 1))[0]
    return {
        (s.style.color, s.style.bgcolor, s.style.bold)
        for s in strip
        if s.style is not None and s.text.strip()
    }


@pytest.mark.asyncio
async def test_a_view_opened_later_is_styled_like_the_first(story: Path) -> None:
    """Caps, opened after Journeys, draws its focused table's header and cursor row as
    Journeys draws its own (the same table styles, in the same theme)."""
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        journeys = _journeys_table(app)
        first_cursor = _cursor_line(journeys)[1]
        first_header = _header_styles(journeys)
        await pilot.press("3")
        await wait_for(pilot, lambda: _ready_for(app, "caps"))
        await pilot.pause()
        caps = app.screen.query_one("#caps-table", DataTable)
        assert caps.has_focus and caps.row_count
        assert _cursor_line(caps)[1] == first_cursor
        assert _header_styles(caps) == first_header


def _keys_line(app: ConsoleApp) -> str:
    return plain(app.screen.query_one(KeyHints))


@pytest.mark.asyncio
async def test_the_key_line_names_the_keys_of_the_view_on_screen(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(160, 36)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        assert " d  Decisions" in _keys_line(app) and "Older" not in _keys_line(app)
        await pilot.press("6")
        await wait_for(pilot, lambda: _ready_for(app, "decisions"))
        await pilot.pause()
        assert "Older" in _keys_line(app) and " d  Decisions" not in _keys_line(app)
        await pilot.press("1")
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.pause()
        assert " d  Decisions" in _keys_line(app) and "Older" not in _keys_line(app)
