"""A store split into parts: one SQLite file per engine partition, read as one.

A partitioned replay runs one engine process per customer partition, and each writes
its own part file beside the main store (`replay.db` → `replay.p0.db`, `replay.p1.db`),
because SQLite takes one writer per file. The main store keeps the run's facts (`meta`,
`rejects`) and names its parts in `meta.partitions`.

Readers see one store: `open_combined` attaches the parts to a read-only connection and
shadows each per-customer table with a TEMP VIEW over the parts (SQLite resolves an
unqualified name in `temp` first), so every query written for a single store works
unchanged. A customer lives in exactly one part, so per-customer queries see all of it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import orjson

#: meta key in the main store: JSON list of part file names (same folder)
PARTS_KEY = "partitions"
#: tables whose rows live in the parts (everything keyed by customer)
PART_TABLES = (
    "events",
    "profiles",
    "journey_instances",
    "ledger",
    "cap_usage",
    "inbox",
    "quarantine",
    "counters",
    "counters_hourly",
    "instance_counters",
)
#: SQLite attaches at most 10 databases by default
MAX_PARTS = 8


class PartsError(RuntimeError):
    """A part of a partitioned store is missing or unreadable; the message names it."""


def part_paths(db: Path, count: int) -> list[Path]:
    """The part files of `db` for `count` partitions: `<stem>.p<k><suffix>` beside it."""
    return [db.with_name(f"{db.stem}.p{k}{db.suffix}") for k in range(count)]


def existing_parts(db: Path, *, with_journals: bool = False) -> list[Path]:
    """The part files of `db` on disk (and their -wal/-shm files if `with_journals`)."""
    journal = "(-wal|-shm)?" if with_journals else ""
    name = re.compile(rf"{re.escape(db.stem)}\.p\d+{re.escape(db.suffix)}{journal}")
    return sorted(p for p in db.parent.glob(f"{db.stem}.p*") if name.fullmatch(p.name))


def remove_parts(db: Path) -> None:
    """Delete every part file of `db` (a fresh run must not read a previous run's parts)."""
    for path in existing_parts(db, with_journals=True):
        path.unlink(missing_ok=True)


def parts_meta(paths: list[Path]) -> str:
    """The `meta.partitions` value naming `paths` (relative to the main store)."""
    return orjson.dumps([p.name for p in paths]).decode()


def read_part_names(conn: sqlite3.Connection) -> list[str]:
    """Part file names recorded in the main store open on `conn` (empty: not partitioned)."""
    try:
        row = conn.execute("SELECT value FROM main.meta WHERE key = ?", (PARTS_KEY,)).fetchone()
    except sqlite3.OperationalError:
        return []
    if row is None:
        return []
    names = orjson.loads(row[0])
    return [str(n) for n in names] if isinstance(names, list) else []


def _uri(path: Path) -> str:
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def attach_parts(conn: sqlite3.Connection, db: Path) -> int:
    """Attach `db`'s parts to `conn` (opened on `db` with `uri=True`) and create the views.

    Returns the number of parts (0: a single-file store; nothing is changed).
    """
    names = read_part_names(conn)
    if not names:
        return 0
    for k, name in enumerate(names):
        path = db.parent / name
        if not path.exists():
            raise PartsError(f"store part {path} is missing")
        conn.execute(f"ATTACH DATABASE ? AS p{k}", (_uri(path),))
    for table in PART_TABLES:
        union = " UNION ALL ".join(f"SELECT * FROM p{k}.{table}" for k in range(len(names)))
        conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS {table} AS {union}")
    return len(names)


def open_combined(db: Path) -> sqlite3.Connection:
    """A read-only connection that sees `db` and all its parts as one store."""
    conn = sqlite3.connect(_uri(db), uri=True, check_same_thread=False, isolation_level=None)
    try:
        attach_parts(conn, db)
    except BaseException:
        conn.close()
        raise
    return conn
