"""Fixtures for the console tests: stores the real engine wrote, and waiting helpers.

The replayed worlds are built once per session (the console only reads them); a test
that needs the store to change under the console runs its own engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from worlds import replay_world


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The story of `worlds.STORY`, replayed in one process up to `worlds.UNTIL`."""
    return replay_world(tmp_path_factory.mktemp("story"))


@pytest.fixture(scope="session")
def story_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same story replayed in two partition processes (a store in three files)."""
    return replay_world(tmp_path_factory.mktemp("story-parts"), partitions=2)
