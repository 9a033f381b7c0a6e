"""Views made ready before their key is pressed: composed, filled and drawn once.

A view's first key press used to cost 100–200 ms of CPU on a large store: Textual
composing the screen, styling its widgets and drawing every table cell for the first
time. The console now does that work while the operator reads the first screen: the
poll worker fetches each other view's data once (`ViewPrefetched`), and `prepare_view`
mounts that view's screen off screen, fills it and renders it, so the tables' caches
hold their cells when the key comes. A view that is never pressed costs one query and
one render at start; one already shown is left alone.

Textual has no public call to mount a screen without showing it, or to render one that
is not on top; the two private calls are here and nowhere else (Textual is pinned to
one major version in `pyproject.toml`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.css.query import NoMatches
from textual.screen import Screen

from omniconsole.tui.screens.base import ViewScreen
from omniconsole.tui.snapshot import Snapshot

__all__ = ["prepare_view"]


async def prepare_view(
    app: App[Any], view: str, make: Callable[[], Screen[Any]], snapshot: Snapshot
) -> bool:
    """Mount `view`'s screen off screen, show `snapshot` on it and draw it once.

    Returns False (and does nothing) when the view was already shown or prepared, or the
    app is closing. Runs on the event loop."""
    name = f"prepared-{view}"
    if (
        not app.is_running
        or view == app.current_mode
        or app.is_screen_installed(name)
        or view in app._screen_stacks  # shown before: it has its screen
    ):
        return False
    screen = make()
    app.install_screen(screen, name)
    await app.remove_mode(view)
    app.add_mode(view, name)  # pressing the key now shows this screen
    _, mounted = app._get_screen(name)  # registers and composes it (no public call)
    await mounted
    # Each step checks the screen is still off screen: a key may show it meanwhile, and
    # from then on the view's own updates draw it.
    try:
        if not screen.is_current and isinstance(screen, ViewScreen):
            screen.prepare(snapshot)
            await _settled(screen)  # the tables have taken their rows
        if not screen.is_current:
            screen._refresh_layout(app.size)  # lay out at the terminal's size…
            await _settled(screen)  # (a table that learns its size drops what it drew)
        if not screen.is_current:
            screen._compositor.render_update(full=True)  # …draw every cell once (discarded)
    except NoMatches:  # the app closed meanwhile and took the screen's widgets down
        return False
    return True


async def _settled(screen: Screen[Any], limit: float = 1.0) -> None:
    """Wait until every widget of `screen` has handled what was queued for it so far
    (as Textual's own Pilot does), at most `limit` seconds."""
    left = 0
    done = asyncio.Event()

    def handled() -> None:
        nonlocal left
        left -= 1
        if left == 0:
            done.set()

    for widget in screen.walk_children(with_self=True):
        if widget.call_later(handled):
            left += 1
    if left:
        # (a widget gone meanwhile never answers: then draw what is there)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await done.wait()
