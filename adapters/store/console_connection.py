"""The console's read-only connection to a store: one committed cut per read.

The engine is the one writer; the console opens the SQLite file read-only (`mode=ro`)
and, thanks to WAL, never blocks it. A partitioned store's parts are attached and read
as one (`parts.attach_parts`). `read()` opens one read transaction: every query made
through the `StoreCut` it yields sees the same checkpoint. `changed()` asks SQLite
whether anything was committed since (`data_version`), so an idle poll runs no query.
The connection is reopened when the file appears, disappears or is recreated. Use it
from one thread at a time (the console's poll worker).

A `postgresql://` URL is read the same way, through `pg_console.PgConsoleConnection`,
which takes the calls made here and in `console_queries`: every part's schema is seen
as one, `read()` is one read-only snapshot, `changed()` asks the database whether a
write transaction started or ended since, and a store made anew is a new schema.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import quote

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.console_queries import StoreCut, loads
from omniconsole.adapters.store.parts import attach_parts, read_part_names
from omniconsole.adapters.store.pg_location import PgLocation, is_postgres_url
from omniconsole.adapters.store.progress import Progress, read_progress

if TYPE_CHECKING:
    from omniconsole.adapters.store.pg_console import PgConsoleConnection

__all__ = ["ConsoleConnection"]


class ConsoleConnection:
    """The console's read-only connection to one store. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path (or `postgresql://` URL); nothing is opened until the first
        read."""
        #: a PostgreSQL store: the same queries, through `pg_console`
        self._pg = (
            PgLocation.parse(path) if isinstance(path, str) and is_postgres_url(path) else None
        )
        self.path = Path(path) if self._pg is None else Path(".")
        #: how messages name the store (a URL's password masked)
        self.where = str(path) if self._pg is None else self._pg.masked
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._sources: tuple[str, ...] = ("main",)
        self._seen: tuple[int | str, ...] = ()

    def close(self) -> None:
        """Close the connection (it is reopened on the next read)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._pg is not None:
            # PostgreSQL's driver only for a PostgreSQL store (~80 ms of a console's start)
            from omniconsole.adapters.store.pg_console import PgConsoleConnection

            try:
                pg = PgConsoleConnection(self._pg)
            except StoreError as exc:  # no server, or refused: as a store not there yet
                raise sqlite3.OperationalError(str(exc)) from None
            self._sources = tuple(pg.parts) or ("main",)
            return cast(sqlite3.Connection, pg)  # it takes the calls made here
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 200")
            parts = attach_parts(conn, self.path)  # a partitioned replay's store
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._sources = tuple(f"p{k}" for k in range(parts)) or ("main",)
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        if self._pg is not None:  # a store made anew is a new schema: a new object id
            from omniconsole.adapters.store.pg_console import PgConsoleConnection, schema_identity

            conn = self._conn
            oid = (
                cast(PgConsoleConnection, conn).schema_identity()
                if conn is not None
                else schema_identity(self._pg)
            )
            return None if oid is None else (oid, 0)
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_dev)

    def exists(self) -> bool:
        """Whether the store file (or schema) is there at all (never creates it)."""
        if self._pg is not None:
            with self._lock:
                return self._file_identity() is not None
        return self.path.exists()

    def progress(self) -> Progress | None:
        """How far a running replay has read (None: no replay says so)."""
        if self._pg is None:
            return read_progress(self.path)
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                row = self._conn.execute("SELECT fact FROM main.progress").fetchone()
                return None if row is None else Progress(**loads(row[0]))
            except (sqlite3.Error, TypeError, ValueError):
                return None

    def _versions(self, conn: sqlite3.Connection) -> tuple[int | str, ...]:
        if self._pg is not None:
            return (cast("PgConsoleConnection", conn).data_version(),)
        # `data_version` changes when another connection commits to that database
        names = ("main", *(s for s in self._sources if s != "main"))
        return tuple(int(conn.execute(f"PRAGMA {n}.data_version").fetchone()[0]) for n in names)

    def changed(self) -> bool:
        """Whether anything was committed since the last `read` began (cheap; True when
        the store is not open, has been replaced, or cannot be asked)."""
        with self._lock:
            if self._conn is None or self._file_identity() != self._identity:
                return True
            try:
                return self._versions(self._conn) != self._seen
            except sqlite3.Error:
                return True

    @contextmanager
    def read(self) -> Iterator[StoreCut]:
        """One read transaction: every query through the cut sees the same checkpoint."""
        with self._lock:
            identity = self._file_identity()
            if identity != self._identity:
                self._close()
            self._identity = identity
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            self._seen = self._versions(conn)
            conn.execute("BEGIN")
            if self._sources == ("main",) and read_part_names(conn):
                # opened before the engine's first checkpoint named its parts: attach them
                conn.execute("COMMIT")
                self._close()
                self._conn = conn = self._connect()
                self._seen = self._versions(conn)
                conn.execute("BEGIN")
            try:
                yield StoreCut(conn, self._sources)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
