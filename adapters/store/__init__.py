"""The durable store behind the `Store` seam (`base.py`): SQLite today.

`store_at(location)` is the one place a `--db` value becomes a `Store`.
"""

from __future__ import annotations

from pathlib import Path

from omniconsole.adapters.store.base import Store, StoreError
from omniconsole.adapters.store.sqlite import SqliteStore

__all__ = ["Store", "StoreError", "store_at"]


def store_at(location: str | Path) -> Store:
    """The store a `--db` value names: a SQLite file path."""
    return SqliteStore(Path(location))
