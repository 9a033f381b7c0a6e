"""The coordinator's side of a partitioned replay: start, feed and stop the partitions.

See `omniconsole.engine.partition_worker` for what a partition is and the protocol.
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
from typing import Any

from omniconsole.domain.timeutil import from_micros, to_micros
from omniconsole.engine.partition_worker import PartitionSpec, Record, run_partition


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


class Partitions:
    """The running partition processes of one replay."""

    def __init__(self, config_dir: Path, stores: Sequence[Path], *, resume: bool) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        # Under the console, sys.stderr is Textual's capture (no usable fd): start the
        # processes against the real one, and have them keep quiet on it (it is the UI).
        captured = sys.stderr is not sys.__stderr__
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        pin = len(cpus) >= len(stores)  # one core each, or none pinned
        self.count = len(stores)
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for index, store in enumerate(stores):
            spec = PartitionSpec(
                index,
                config_dir,
                store,
                resume,
                cpu=cpus[index] if pin else None,
                quiet=captured,
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
        try:
            #: the last log line each partition had committed (resume skips up to it)
            self.checkpoint_lines = [int(self._receive(k, "ready")) for k in range(self.count)]
        except BaseException:
            self.stop()  # the ones that did start must not outlive a failed start
            raise

    # ---- messages ----

    def _fail(self, index: int, why: str) -> PartitionFailure:
        conn = self.conns[index]
        try:
            while conn.poll(0.5):
                message = conn.recv()
                if message[0] == "error":
                    return PartitionFailure(message[1])
        except (EOFError, OSError):
            pass
        code = self.procs[index].exitcode
        return PartitionFailure(
            f"partition {index} {why}" + ("" if code is None else f" (exit code {code})")
        )

    def _send(self, index: int, message: tuple[Any, ...]) -> None:
        try:
            self.conns[index].send(message)
        except OSError:
            raise self._fail(index, "stopped unexpectedly") from None

    def _receive(self, index: int, expected: str = "ok") -> Any:
        conn = self.conns[index]
        while True:
            try:
                if conn.poll(1.0):
                    message = conn.recv()
                    break
            except (EOFError, OSError):
                raise self._fail(index, "stopped unexpectedly") from None
            if not self.procs[index].is_alive():
                raise self._fail(index, "stopped unexpectedly")
        if message[0] == "error":
            raise PartitionFailure(message[1])
        if message[0] != expected:
            raise PartitionFailure(f"partition {index}: unexpected answer {message[0]!r}")
        return message[1]

    def _ask_all(self, message: tuple[Any, ...]) -> list[Any]:
        for index in range(self.count):
            self._send(index, message)
        return [self._receive(index) for index in range(self.count)]

    # ---- the runtime interface the replay driver uses ----

    def apply(self, parts: Sequence[list[Record]], horizon: datetime | None) -> None:
        """Each partition's lines, then timers due before `horizon` (every partition)."""
        micros = None if horizon is None else to_micros(horizon)
        for index, records in enumerate(parts):
            self._send(index, ("apply", records, micros))

    def drain(self) -> None:
        """Wait until every partition has applied everything sent so far."""
        self._ask_all(("drain",))

    def next_due(self) -> datetime | None:
        """The earliest pending timer in any partition."""
        dues = [d for d in self._ask_all(("next_due",)) if d is not None]
        return from_micros(min(dues)) if dues else None

    def checkpoint(self, meta: dict[str, str], now: datetime, *, max_active: int) -> None:
        """Every partition commits its part at this cut (the coordinator commits after)."""
        share = max(1, max_active // self.count)
        self._ask_all(("checkpoint", meta, to_micros(now), share))

    def stop(self) -> None:
        """Stop every partition (uncommitted work is rolled back); never raises."""
        for index, conn in enumerate(self.conns):
            if not self.procs[index].is_alive():
                continue
            try:
                conn.send(("stop",))
            except OSError:
                continue
        for index, proc in enumerate(self.procs):
            conn = self.conns[index]
            try:
                while proc.is_alive() and conn.poll(5.0):
                    if conn.recv()[0] in ("ok", "error"):
                        break
            except (EOFError, OSError):
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
