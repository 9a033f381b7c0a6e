"""The garbage collector while a console runs: rare passes, so none lands in a key press.

A console holds a large, long-lived heap (Textual's widgets, styles and rendered
lines, the snapshot on screen) and makes young garbage on every key and poll. With
Python's default thresholds (700, 10, 10) full collections walked that heap every few
seconds; on the 1M-event store 6 of them fell inside 60 timed key presses, 1.5 s of
wall time together and up to 450 ms each on the loaded machine — most of the slowest
presses. With these thresholds (the engine's, for the same reason) no full collection
ran in that benchmark; young collections stay short. Reference counting still frees
all garbage that is not in a cycle at once.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

__all__ = ["CONSOLE_GC_THRESHOLDS", "quiet_collector"]

#: gen0 allocations before a young collection; young / middle collections before the next
CONSOLE_GC_THRESHOLDS = (50_000, 20, 20)


def quiet_collector() -> Callable[[], None]:
    """Set the console's thresholds and freeze what exists (the imported modules, the
    app); return the call that puts the previous thresholds back and unfreezes.

    Frozen objects are never walked by a collection: without it, a full pass over the
    imports' objects fell in the console's start, ~50 ms before its first frame."""
    previous = gc.get_threshold()
    gc.set_threshold(*CONSOLE_GC_THRESHOLDS)
    gc.freeze()

    def restore() -> None:
        gc.unfreeze()
        gc.set_threshold(*previous)

    return restore
