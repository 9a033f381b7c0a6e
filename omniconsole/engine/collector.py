"""The engine's garbage collection during a replay: once per checkpoint, not per allocation.

The engine holds a large, long-lived heap (profiles, timers, cap usage) and makes almost
no cyclic garbage: its objects die by reference count. Python's collector nevertheless
runs a young-generation pass every N container allocations, and each pass walks every
young object, alive or not, so its cost grows with the allocations, ~1 s of 12 s CPU on
the 112k-event decision-heavy log even with thresholds of (50000, 20, 20). Measured on
that log with no collection at all: the same ledger, peak RSS 363 MB against 390 MB.

So a headless replay turns automatic collection off, and at a checkpoint collects
once and freezes the survivors (`gc.freeze`): the next collection walks only what was
allocated since. A checkpoint is a natural place: the engine is drained and waiting.
Not at every checkpoint, though: when profiles are evicted and brought back, everything
the reloads allocate survives into the walk (0.2–2.2 s a collection, ~5 % of a replay
evicting half its customers), and the collections found nothing to free. So after a
collection that frees almost nothing the next waits twice as many checkpoints (up to
`MAX_GAP`); one that frees more brings the gap back to one. A skipped checkpoint does
not freeze: what it would have walked waits for the next collection, none of it hidden.

The C allocator too (glibc, where there is one): each thread that allocates got an
arena of its own, up to eight per core, and memory freed in one stays there. The
engine's threads (shard, governor, writer, SQLite's) then held ~1.65 GB of RSS at a
checkpoint of an 800k-event replay where two arenas held 1.19 GB. So the engine's
processes use two arenas, and hand freed memory back at each checkpoint (`malloc_trim`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from dataclasses import dataclass
from functools import cache

_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
ENGINE_MALLOC_ARENAS = 2
#: the status of a checkpoint in the middle of a run (the meta's `status`)
RUNNING = "running"


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (mallopt, malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc


def limit_malloc_arenas(count: int = ENGINE_MALLOC_ARENAS) -> None:
    """Let at most `count` glibc arenas serve this process's threads (call before they
    start; a no-op without glibc)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, count)


def trim_malloc() -> None:
    """Give memory the C allocator holds free back to the system (no-op without glibc)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


#: The thresholds when collection stays automatic (a replay under a console, whose UI
#: makes cyclic garbage). The default (700, 10, 10) made full passes over the engine's
#: heap ~35% of replay CPU.
ENGINE_GC_THRESHOLDS = (50_000, 20, 20)


#: a collection freeing at most this many objects counts as finding nothing
QUIET_COLLECTION = 1_000
#: checkpoints at most between two collections
MAX_GAP = 16


@dataclass(slots=True)
class CheckpointCollector:
    """Collection at checkpoints, less often while it finds nothing; `stop` restores what
    was there before `start`."""

    enabled: bool = True
    thresholds: tuple[int, int, int] = (700, 10, 10)
    active: bool = False
    gap: int = 1  # checkpoints from one collection to the next
    wait: int = 0  # checkpoints to skip before the next collection
    collections: int = 0  # done since `start`

    def start(self, *, automatic: bool = False) -> None:
        """Take over collection; `automatic`: keep it on, with the engine's thresholds.

        First collects what the caller left: cyclic garbage of work done before (the
        benchmark generating its log: 23 of 69 MB at 200,000 customers) would wait for
        the first checkpoint, and by then the engine's own objects are allocated among
        it, so the memory stays the process's for the whole run."""
        self.enabled, self.thresholds = gc.isenabled(), gc.get_threshold()
        gc.collect()
        trim_malloc()
        gc.set_threshold(*ENGINE_GC_THRESHOLDS)
        self.active = not automatic
        self.gap, self.wait, self.collections = 1, 0, 0
        if self.active:
            gc.disable()

    def checkpoint(self, status: str = RUNNING) -> None:
        """Collect what became cyclic garbage since the last checkpoint; freeze the rest.

        The run's last checkpoint (any `status` but running) collects nothing: the
        process ends or `stop` hands collection back, and a pass over everything
        allocated since the previous checkpoint was ~3 % of a short replay's CPU."""
        if self.active and status == RUNNING:
            if self.wait > 0:
                self.wait -= 1
            else:
                freed = gc.collect()
                gc.freeze()
                self.collections += 1
                self.gap = min(self.gap * 2, MAX_GAP) if freed <= QUIET_COLLECTION else 1
                self.wait = self.gap - 1
        trim_malloc()

    def stop(self) -> None:
        """Give the process its collector back (frozen objects become collectable again)."""
        if self.active:
            gc.unfreeze()
            self.active = False
        gc.set_threshold(*self.thresholds)
        if self.enabled:
            gc.enable()
