"""The console's read-only connection to a store: one committed cut per read.

The engine is the one writer; the console opens the SQLite file read-only (`mode=ro`)
and, thanks to WAL, never blocks it. A partitioned store's parts are attached and read
as one (`parts.attach_parts`). `read()` opens one read transaction: every query made
through the `StoreCut` it yields sees the same checkpoint. `changed()` asks SQLite
whether anything was committed since (`data_version`), so an idle poll runs no query.
The connection is reopened when the file appears, disappears or is recreated. Use it
from one thread at a time (the console's poll worker).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from omniconsole.adapters.store.console_queries import StoreCut
from omniconsole.adapters.store.parts import attach_parts, read_part_names

__all__ = ["ConsoleConnection"]


class ConsoleConnection:
    """The console's read-only connection to one store. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path; nothing is opened until the first read."""
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._sources: tuple[str, ...] = ("main",)
        self._seen: tuple[int, ...] = ()

    def close(self) -> None:
        """Close the connection (it is reopened on the next read)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
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
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_dev)

    def exists(self) -> bool:
        """Whether the store file is there at all (never creates it)."""
        return self.path.exists()

    def _versions(self, conn: sqlite3.Connection) -> tuple[int, ...]:
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
