"""`SeenIds`: the message ids a driver has applied (its duplicate check), exact and small.

A set of the ids themselves costs ~96 B per event (the string and its set slot): ~400 MB
for a million customers' log, the largest single item of the run. Here every id is
kept as a 64-bit digest in an open-addressed table (one `array('Q')`, 8 B a slot, at
most 2/3 full: ~12–24 B per id). A digest says "maybe seen"; it is never the answer
alone:

- the ids added lately (at least the last `WINDOW`) are also kept exactly, in two small
  sets: a log's duplicates come close together (a retried delivery), and
  ids not committed yet cannot be confirmed anywhere else;
- an older digest hit is confirmed exactly by `confirm(id)` — the store, which holds
  every applied event's id once its checkpoint has committed. A colliding digest (two
  distinct ids, one digest: ~1 in 10^7 runs for 4 million ids) therefore costs one store
  query and never drops an event, and every real duplicate is still found.

The table lives in the driver's process only and is rebuilt on resume from the store,
so the digest need not be stable across runs: Python's own string hash (SipHash, cached
on the string) serves, and tests inject a colliding one.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable

__all__ = ["SeenIds"]

_MASK64 = (1 << 64) - 1
#: ids kept exactly per generation; the older generation is dropped when the newer one
#: has this many and a checkpoint has committed both (~6 MB per generation)
WINDOW = 1 << 16
#: the digest of an id (tests put a colliding one here)
DIGEST: Callable[[str], int] = hash


class SeenIds:
    """Applied message ids: `mid in seen`, `seen.add(mid)`. Use from one thread.

    `confirm(mid)` answers exactly whether `mid` is among the committed applied ids;
    it is asked only when `mid`'s digest is in the table and `mid` is not among the ids
    kept exactly. `committed()` is called after each checkpoint commits."""

    __slots__ = ("_confirm", "_count", "_digest", "_mask", "_newer", "_older", "_slots", "_window")

    def __init__(
        self,
        confirm: Callable[[str], bool],
        *,
        digest: Callable[[str], int] | None = None,
        window: int | None = None,
    ) -> None:
        self._confirm = confirm
        self._digest = digest or DIGEST
        self._window = window or WINDOW
        self._slots = array("Q", [0]) * 1024
        self._mask = 1023
        self._count = 0
        self._newer: set[str] = set()  # added since the last generation turned
        self._older: set[str] = set()  # the generation before: committed by now or soon

    def __len__(self) -> int:
        """How many distinct digests are held (the table's load, not an id count)."""
        return self._count

    def _key(self, mid: str) -> int:
        key = self._digest(mid) & _MASK64
        return key or 1  # 0 marks an empty slot

    def _slot(self, key: int) -> int:
        """Where `key` is held, or the empty slot where it would go (linear probing)."""
        slots, mask = self._slots, self._mask
        i = key & mask
        while slots[i] and slots[i] != key:
            i = (i + 1) & mask
        return i

    def _find(self, key: int) -> bool:
        return self._slots[self._slot(key)] == key

    def _insert(self, key: int) -> None:
        i = self._slot(key)
        if self._slots[i] == key:
            return
        self._slots[i] = key
        self._count += 1
        if self._count * 3 > self._mask * 2:
            self._grow()

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", [0]) * (2 * len(old))
        self._mask = 2 * len(old) - 1
        self._count = 0
        insert = self._insert
        for key in old:
            if key:
                insert(key)

    def __contains__(self, mid: str) -> bool:
        if mid in self._newer or mid in self._older:
            return True
        if not self._find(self._key(mid)):
            return False
        return self._confirm(mid)

    def add(self, mid: str) -> None:
        """`mid` is applied (the caller checked it was not seen)."""
        self._insert(self._key(mid))
        self._newer.add(mid)

    def seed(self, committed: Iterable[str]) -> None:
        """Ids already committed to the store (a resumed run): digests only."""
        insert, key = self._insert, self._key
        for mid in committed:
            insert(key(mid))

    def committed(self) -> None:
        """A checkpoint has committed every id added so far, so `confirm` finds them.
        When the newer generation is full it becomes the older one (a duplicate just
        after the turn is still answered here, not by a store query) and the older one
        is dropped."""
        if len(self._newer) >= self._window:
            self._older = self._newer
            self._newer = set()
