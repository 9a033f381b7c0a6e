"""PartitionedEngine: the engine as one process per partition of the customers (an `Engine`).

The coordinator (the process driving the replay) keeps the run's main store — its
`meta` and `rejects` — and routes each accepted line to the partition of its customer
(`crc32(customer) % partitions`). See `omniconsole.engine.partition_worker` for what a
partition is and the protocol (`omniconsole.actors.messages.Partition*`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import zlib
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar, cast

from omniconsole.actors.messages import (
    Checkpoint,
    PartitionApply,
    PartitionCheckpoint,
    PartitionDone,
    PartitionDrain,
    PartitionError,
    PartitionLine,
    PartitionNextDue,
    PartitionReady,
    PartitionRequest,
    PartitionStop,
    Rows,
    StoreCall,
)
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.store.base import Store
from omniconsole.domain.events import Event
from omniconsole.domain.records import StoreRecord
from omniconsole.domain.timeutil import from_micros, to_micros
from omniconsole.engine.partition_worker import PartitionSpec, run_partition
from omniconsole.engine.protocol import Cut

_A = TypeVar("_A", PartitionReady, PartitionDone)


class PartitionFailure(RuntimeError):
    """A partition process failed or died; the message says which and why."""


def usable_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def partition_of(customer: str, count: int) -> int:
    """Stable partition of a customer (crc32: the same in every process and run)."""
    return zlib.crc32(customer.encode()) % count


class PartitionedEngine:
    """The running partition processes of one replay, and the run's main store."""

    def __init__(self, config_dir: Path, store: Store, count: int, *, resume: bool) -> None:
        self.count = count
        self.writer = StoreWriterActor.start(store, fresh=not resume)
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        self.lines: list[list[PartitionLine]] = [[] for _ in range(count)]
        try:
            self._start(config_dir, [store.part(k, count) for k in range(count)], resume)
            #: the last log line each partition had committed (a resumed run skips them)
            self.committed = [
                self._receive(k, PartitionReady).checkpoint_line for k in range(self.count)
            ]
        except BaseException:
            self.stop()  # the ones that did start must not outlive a failed start
            raise

    def _start(self, config_dir: Path, parts: Sequence[Store], resume: bool) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        # Under the console, sys.stderr is Textual's capture (no usable fd): start the
        # processes against the real one, and have them keep quiet on it (it is the UI).
        captured = sys.stderr is not sys.__stderr__
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        pin = len(cpus) >= len(parts)  # one core each, or none pinned
        for index, store in enumerate(parts):
            spec = PartitionSpec(
                index, config_dir, store, resume, cpu=cpus[index] if pin else None, quiet=captured
            )
            ours, theirs = context.Pipe(duplex=True)
            proc = context.Process(
                target=run_partition,
                args=(theirs, spec),
                name=f"omniconsole-partition-{index}",
                daemon=True,
            )
            with contextlib.redirect_stderr(sys.__stderr__):
                proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)

    # ---- Engine ----

    def add(self, line: int, event: Event, at: datetime, late: bool, raw: bytes) -> None:
        """Route the line to its customer's partition (unless it committed it already)."""
        index = partition_of(event.customer, self.count)
        if line > self.committed[index]:  # else that partition had it before a crash
            self.lines[index].append((line, raw, to_micros(at) if late else None))

    def write(self, records: Sequence[StoreRecord]) -> None:
        """Records of the run itself (rejects) go to the main store."""
        if records:
            self.writer.tell(Rows(records))

    def apply(self, horizon: datetime | None) -> None:
        """Each partition's lines, then timers due before `horizon` (every partition)."""
        micros = None if horizon is None else to_micros(horizon)
        lines, self.lines = self.lines, [[] for _ in self.lines]
        for index, part in enumerate(lines):
            self._send(index, PartitionApply(part, micros))

    def drain(self) -> None:
        """Wait until every partition has applied everything sent so far."""
        self._ask_all(PartitionDrain())

    def next_due(self) -> datetime | None:
        """The earliest pending timer in any partition."""
        dues = [d for d in self._ask_all(PartitionNextDue()) if d is not None]
        return from_micros(min(dues)) if dues else None

    def checkpoint(self, cut: Cut) -> None:
        """Every partition commits its part at this cut, then the main store.

        Parts first: on resume a part may be one checkpoint ahead of the main store (it
        skips the lines it has), never behind it.
        """
        self.commit_parts(cut)
        self.writer.ask(Checkpoint(cut.meta))

    def commit_parts(self, cut: Cut) -> None:
        """Every partition commits its part at this cut (the main store not yet)."""
        share = max(1, cut.max_active // self.count)
        self._ask_all(PartitionCheckpoint(cut.meta, to_micros(cut.now), share, cut.budget))

    def meta(self) -> dict[str, str]:
        """The main store's committed run facts."""
        return cast(dict[str, str], self.writer.ask(StoreCall(lambda s: s.meta())))

    def stop(self) -> None:
        """Stop every partition (uncommitted work is rolled back), then the main store's
        writer; never raises."""
        for index, conn in enumerate(self.conns):
            if self.procs[index].is_alive():
                with contextlib.suppress(OSError):
                    conn.send(PartitionStop())
        for index, proc in enumerate(self.procs):
            conn = self.conns[index]
            try:
                while proc.is_alive() and conn.poll(5.0):
                    if isinstance(conn.recv(), PartitionDone | PartitionError):
                        break
            except (EOFError, OSError):
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self.writer.stop()

    # ---- the pipes ----

    def _fail(self, index: int, why: str) -> PartitionFailure:
        conn = self.conns[index]
        try:
            while conn.poll(0.5):
                message = conn.recv()
                if isinstance(message, PartitionError):
                    return PartitionFailure(message.text)
        except (EOFError, OSError):
            pass
        code = self.procs[index].exitcode
        return PartitionFailure(
            f"partition {index} {why}" + ("" if code is None else f" (exit code {code})")
        )

    def _send(self, index: int, request: PartitionRequest) -> None:
        try:
            self.conns[index].send(request)
        except OSError:
            raise self._fail(index, "stopped unexpectedly") from None

    def _receive(self, index: int, expected: type[_A]) -> _A:
        conn = self.conns[index]
        while True:
            try:
                if conn.poll(1.0):
                    message: Any = conn.recv()
                    break
            except (EOFError, OSError):
                raise self._fail(index, "stopped unexpectedly") from None
            if not self.procs[index].is_alive():
                raise self._fail(index, "stopped unexpectedly")
        if isinstance(message, PartitionError):
            raise PartitionFailure(message.text)
        if not isinstance(message, expected):
            raise PartitionFailure(f"partition {index}: unexpected answer {message!r}")
        return message

    def _ask_all(self, request: PartitionRequest) -> list[int | None]:
        for index in range(self.count):
            self._send(index, request)
        return [self._receive(index, PartitionDone).value for index in range(self.count)]
