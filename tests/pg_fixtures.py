"""A real PostgreSQL for the tests: one server per session (pgserver), a database each.

pgserver bundles PostgreSQL 16 and starts it in about a second with no system install.
As root it runs the server as a `pgserver` system user it creates once (initdb refuses
root). The server listens on a Unix socket only (no port to clash with). It is stopped
and deleted explicitly at the end of the session: its atexit hook is not relied on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Test settings: the data is thrown away, so durability buys nothing here.
FAST_AND_LOOSE = (
    "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
    " ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A running PostgreSQL server for the whole session."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # platformdirs (under pgserver) warns without one, and warnings are errors here
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="omni-xdg-")
    import pgserver

    # Not under pytest's tmp_path: every pytest session started on the machine (another
    # checkout's too) resets /tmp/pytest-of-<user> to mode 0700, which would lock the
    # server's own user (`pgserver`, when we are root) out of its data folder mid-run.
    home = Path(tempfile.mkdtemp(prefix="omni-pg-"))
    server = pgserver.get_server(home / "data", cleanup_mode="delete")
    try:
        server.psql(FAST_AND_LOOSE)
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


def fresh_database(server: Any) -> str:
    """A new empty database on `server` (locale C, as documented); its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    root = server.get_uri()
    with psycopg.connect(root, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'")
    return str(root.replace("/postgres?", f"/{name}?"))


def drop_database(server: Any, url: str) -> None:
    """Drop the database `fresh_database` made (closing whatever still uses it)."""
    import psycopg

    name = url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """The URL of a fresh, empty database (dropped after the test)."""
    url = fresh_database(pg_server)
    yield url
    drop_database(pg_server, url)


def socket_dir(url: str) -> Path:
    """The folder of the server's Unix socket, from a pgserver URL."""
    return Path(url.split("host=", 1)[1].split("&", 1)[0])
