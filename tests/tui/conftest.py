"""Fixtures for the console tests: a store built from fixed data, and waiting helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_factory import build_store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with three customers, seven decisions, handoffs and instances."""
    return build_store(tmp_path / "store.db")
