"""The console's garbage-collector settings hold while it runs and go when it closes."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from tui_support import wait_for

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.gc_pauses import CONSOLE_GC_THRESHOLDS


@pytest.mark.asyncio
async def test_a_console_collects_rarely_while_it_runs_and_restores_the_collector(
    story: Path,
) -> None:
    before = gc.get_threshold()
    assert before != CONSOLE_GC_THRESHOLDS
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.latest is not None and app.latest.status.ready)
        assert gc.get_threshold() == CONSOLE_GC_THRESHOLDS
    assert gc.get_threshold() == before
