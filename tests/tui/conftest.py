"""Fixtures for the console tests: a store built from fixed data, and waiting helpers."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from store_factory import build_store
from textual.pilot import Pilot
from textual.widgets import Static


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with three customers, seven decisions, handoffs and instances."""
    return build_store(tmp_path / "store.db")


async def wait_for(
    pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Let the app run (and its poll worker post snapshots) until `condition` holds."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError("condition not met before timeout")
        await pilot.pause(0.05)
        waited += 0.05


def plain(widget: Static, width: int = 200) -> str:
    """The text a Static shows, without styles."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()
