"""How far a replay has read, published about once a second beside its store.

A headless replay commits a checkpoint every 15 s (or 250,000 events); in between, the
store's write lock is held by the transaction being filled, so nothing else can be
committed there. The replay's driver therefore publishes a small progress fact —
lines read, simulated time reached, events per second — to a file beside the store
(`replay.db` → `replay.db.progress`), replaced atomically. A console shows it next
to the committed cut without ever seeing an uncommitted decision.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

__all__ = ["Progress", "progress_path", "read_progress", "remove_progress", "write_progress"]

#: a fact older than this (wall seconds) is from a replay that is no longer running
STALE_AFTER = 10.0


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a running replay is; `updated` is the wall time (epoch seconds) it was said."""

    line: int
    bytes_read: int
    bytes_total: int
    events: int
    clock: str | None
    events_per_second: float
    decisions: int
    updated: float

    @property
    def fraction(self) -> float | None:
        """How much of the log is read (None: unknown size)."""
        return self.bytes_read / self.bytes_total if self.bytes_total else None

    def fresh(self, now: float | None = None) -> bool:
        """Whether the replay said it recently (it is still running)."""
        return (now if now is not None else time.time()) - self.updated < STALE_AFTER


def progress_path(db: Path) -> Path:
    """The progress file of the store at `db`."""
    return db.with_name(db.name + ".progress")


def write_progress(db: Path, progress: Progress) -> None:
    """Publish `progress` for the store at `db` (atomically: readers see whole facts)."""
    target = progress_path(db)
    temp = target.with_name(target.name + f".{os.getpid()}.tmp")
    try:
        temp.write_bytes(orjson.dumps(asdict(progress)))
        os.replace(temp, target)
    except OSError:
        temp.unlink(missing_ok=True)  # progress is a courtesy: never stop the replay for it


def read_progress(db: Path) -> Progress | None:
    """The last progress published beside `db` (None: none, or unreadable)."""
    try:
        raw = orjson.loads(progress_path(db).read_bytes())
        return Progress(**raw)
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def remove_progress(db: Path) -> None:
    """Forget a previous run's progress."""
    progress_path(db).unlink(missing_ok=True)
