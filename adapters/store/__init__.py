"""The durable store behind the `Store` seam (`base.py`): SQLite or PostgreSQL.

`store_at(location)` is the one place a `--db` value becomes a `Store`: a
`postgresql://` (or `postgres://`) URL names a PostgreSQL store (`postgres.py`),
anything else a SQLite file (`sqlite.py`), the embedded default.
"""

from __future__ import annotations

from pathlib import Path

from omniconsole.adapters.store.base import Store, StoreError
from omniconsole.adapters.store.pg_location import is_postgres_url
from omniconsole.adapters.store.sqlite import SqliteStore

__all__ = ["Store", "StoreError", "is_postgres_url", "store_at"]


def store_at(location: str | Path) -> Store:
    """The store a `--db` value names: a `postgresql://` URL or a SQLite file path."""
    if isinstance(location, str) and is_postgres_url(location):
        from omniconsole.adapters.store.postgres import PostgresStore

        return PostgresStore.from_url(location)
    return SqliteStore(Path(location))
