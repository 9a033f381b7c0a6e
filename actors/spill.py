"""Changed profiles evicted before the checkpoint that stores them, kept on disk.

A profile shard keeps at most `--max-active` profiles whole in memory. A changed one
beyond that leaves memory before the next checkpoint writes it; until then its stored
columns (and its changed journey-instance rows) must still be at hand: to write at the
checkpoint, or to bring the customer back if it has more events first. Kept as bytes in
memory they were the largest thing a partition's memory grew by between checkpoints
(~1.4 KB a profile plus ~250 B of rows, 68,000 of them in one 15-s interval of a
200,000-customer replay: ~105 MB, then freed at the checkpoint). Here they wait in an
anonymous temporary file instead (in `tempfile.gettempdir()`, so `TMPDIR`), with a
file offset per customer in memory; the file is emptied at each checkpoint and gone
when the shard stops (or the process dies).

The file is a cache of what is not yet committed, never read after a restart: a crash
loses it together with the store's open transaction, and `--resume` starts from the
last checkpoint as before.
"""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from omniconsole.domain.profile import Profile
from omniconsole.domain.records import InstanceRecord, ProfileRecord
from omniconsole.domain.timeutil import format_timestamp

_LENGTH = struct.Struct("<I")
#: bytes appended before they are written to the file in one call
_TAIL_LIMIT = 1 << 20
#: bytes read at once for one record (most profiles fit: one system call each)
_READ_AHEAD = 4096


class SpillFile:
    """Records (bytes) appended to an anonymous temporary file and read back by offset.

    Used by one thread (its shard's). The file is created at the first append."""

    __slots__ = ("_file", "_size", "_tail", "_tail_limit")

    def __init__(self, tail_limit: int = _TAIL_LIMIT) -> None:
        self._tail_limit = tail_limit
        self._file: IO[bytes] | None = None
        self._size = 0  # bytes in the file
        self._tail = bytearray()  # appended, not yet in the file

    def __len__(self) -> int:
        """Bytes held, in the file and not yet written to it."""
        return self._size + len(self._tail)

    def append(self, data: bytes) -> int:
        """Keep `data`; answer the offset to read it back with."""
        offset = self._size + len(self._tail)
        self._tail += _LENGTH.pack(len(data))
        self._tail += data
        if len(self._tail) >= self._tail_limit:
            self._write_tail()
        return offset

    def read(self, offset: int) -> bytes:
        """The record appended at `offset`."""
        if offset >= self._size:
            start = offset - self._size
            (length,) = _LENGTH.unpack_from(self._tail, start)
            return bytes(self._tail[start + 4 : start + 4 + length])
        assert self._file is not None
        fd = self._file.fileno()
        head = os.pread(fd, _READ_AHEAD, offset)
        (length,) = _LENGTH.unpack_from(head)
        if 4 + length <= len(head):
            return head[4 : 4 + length]
        return head[4:] + os.pread(fd, 4 + length - len(head), offset + len(head))

    def records(self) -> Iterator[tuple[int, bytes]]:
        """(offset, record) of every record, in the order appended (read a megabyte at
        a time: one system call for hundreds of records)."""
        self._write_tail()
        if self._file is None:
            return
        fd = self._file.fileno()
        buffer, at, offset = b"", 0, 0  # `buffer[at]` is at `offset - len(buffer) + at`
        while True:
            if len(buffer) - at >= 4:
                (length,) = _LENGTH.unpack_from(buffer, at)
                if len(buffer) - at >= 4 + length:
                    yield offset - len(buffer) + at, buffer[at + 4 : at + 4 + length]
                    at += 4 + length
                    continue
            if offset >= self._size:
                if at != len(buffer):
                    raise OSError("spill file: truncated record")
                return
            more = os.pread(fd, _TAIL_LIMIT, offset)
            if not more:
                raise OSError("spill file: shorter than written")
            offset += len(more)
            buffer, at = buffer[at:] + more, 0

    def clear(self) -> None:
        """Forget every record (the file is emptied, not removed)."""
        self._tail = bytearray()
        if self._file is not None and self._size:
            self._file.truncate(0)
        self._size = 0

    def close(self) -> None:
        """Remove the file."""
        self._tail = bytearray()
        self._size = 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write_tail(self) -> None:
        if not self._tail:
            return
        if self._file is None:
            # kept open across calls (closed by `close`): no context manager fits
            self._file = tempfile.TemporaryFile(prefix="omniconsole-spill-", buffering=0)  # noqa: SIM115
        os.pwrite(self._file.fileno(), self._tail, self._size)
        self._size += len(self._tail)
        self._tail = bytearray()


@dataclass(frozen=True, slots=True)
class Evicted:
    """A changed profile out of memory: the store's columns, ready to be written."""

    email: str | None
    phone: str | None
    next_due: str | None
    state: bytes

    @classmethod
    def of(cls, profile: Profile) -> Evicted:
        """The stored columns of `profile` (serialises it)."""
        traits = profile.traits
        email = traits.get("email")
        phone = traits.get("phone")
        return cls(
            email if isinstance(email, str) else None,
            phone if isinstance(phone, str) else None,
            format_timestamp(profile.timers[0].due) if profile.timers else None,
            profile.dumps(),
        )

    def record(self, customer: str, stamp: str) -> ProfileRecord:
        """Its row in `profiles`, stored at the checkpoint stamped `stamp`."""
        return ProfileRecord(
            customer, self.email, self.phone, stamp, self.next_due, self.state.decode()
        )


class EvictedProfiles:
    """customer -> `Evicted`, the profiles on disk (`SpillFile`), their offsets in memory;
    and the changed instance rows of evicted customers, in the order they were evicted."""

    __slots__ = ("_offsets", "_profiles", "_rows")

    def __init__(self, tail_limit: int = _TAIL_LIMIT) -> None:
        self._offsets: dict[str, int] = {}
        self._profiles = SpillFile(tail_limit)
        self._rows = SpillFile(tail_limit)

    def __len__(self) -> int:
        return len(self._offsets)

    def __contains__(self, customer: object) -> bool:
        return customer in self._offsets

    def __iter__(self) -> Iterator[str]:
        return iter(self._offsets)

    def put(self, customer: str, evicted: Evicted, rows: Sequence[InstanceRecord]) -> None:
        """Keep `customer`'s columns until the checkpoint (or until it comes back), and
        its changed instance rows until the checkpoint."""
        columns = (evicted.email, evicted.phone, evicted.next_due, evicted.state)
        self._offsets[customer] = self._profiles.append(
            pickle.dumps(columns, pickle.HIGHEST_PROTOCOL)
        )
        if rows:  # as plain tuples: a third of the time a NamedTuple takes to pickle
            self._rows.append(pickle.dumps([tuple(r) for r in rows], pickle.HIGHEST_PROTOCOL))

    def pop(self, customer: str) -> Evicted | None:
        """`customer`'s columns, forgotten here (its rows stay for the checkpoint)."""
        offset = self._offsets.pop(customer, None)
        if offset is None:
            return None
        return Evicted(*pickle.loads(self._profiles.read(offset)))

    def discard(self, customer: str) -> None:
        """Forget `customer`'s columns without reading them back (its rows stay)."""
        self._offsets.pop(customer, None)

    def drain(self) -> Iterator[tuple[str, Evicted]]:
        """Every evicted profile, in the order they were evicted (the file read from
        start to end, skipping those brought back since); then forgets them all."""
        profiles = self._profiles
        held = {offset: customer for customer, offset in self._offsets.items()}
        self._offsets = {}
        for offset, record in profiles.records():
            customer = held.get(offset)
            if customer is not None:
                yield customer, Evicted(*pickle.loads(record))
        profiles.clear()

    def drain_rows(self) -> Iterator[InstanceRecord]:
        """The instance rows of every evicted customer, in order; then forgets them."""
        make = InstanceRecord._make
        for _, record in self._rows.records():
            for row in pickle.loads(record):
                yield make(row)
        self._rows.clear()

    def close(self) -> None:
        """Remove the files."""
        self._offsets = {}
        self._profiles.close()
        self._rows.close()
