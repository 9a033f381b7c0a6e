"""One engine partition: a process running the actor runtime for a share of the customers.

The replay's coordinator reads and validates the log once, then sends each partition
the lines of its customers (`crc32(customer) % partitions`) with the clock time they
apply at. A partition is a whole engine on its own: profile shard, fatigue governor,
channel dispatchers and store writer, over its own part of the store. Every decision
depends only on one customer's history, and each customer lives in one partition, so
partitions never need to talk to each other — and on a machine with several cores they
run side by side instead of sharing one interpreter lock.

Protocol (over a `multiprocessing` connection; the messages are the `Partition*`
dataclasses of `omniconsole.actors.messages`, answered in order):

    coordinator ─ PartitionApply(lines, horizon) ─▶           (not answered)
    coordinator ─ PartitionDrain / PartitionNextDue / PartitionCheckpoint
                  / PartitionStop ─▶ answered by PartitionDone(value)
    any failure ─▶ PartitionError(text), and the process exits

`PartitionApply` is not answered: a partition reads at most READ_AHEAD requests ahead,
and the coordinator's send blocks beyond that (back-pressure). On start the partition
answers PartitionReady(checkpoint_line): the coordinator then sends a resumed
partition only the lines after the ones it has committed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from omniconsole.actors.messages import (
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
)
from omniconsole.actors.runtime import ActorEngine
from omniconsole.adapters.store.base import Store
from omniconsole.domain.config import EngineConfig, load_config
from omniconsole.domain.events import Rejected, parse_line
from omniconsole.domain.timeutil import from_micros, to_micros
from omniconsole.engine.collector import RUNNING, CheckpointCollector, limit_malloc_arenas
from omniconsole.engine.protocol import Cut

#: requests a partition takes off the pipe before its engine has handled them
READ_AHEAD = 4


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """What a partition process needs to start (picklable)."""

    index: int
    config_dir: Path
    store: Store  # this partition's part
    resume: bool
    cpu: int | None = None  # pin the process to this CPU (its threads then share one core)
    quiet: bool = False  # stderr is a console's screen: write nothing there
    switch_interval: float = 0.02


class Partition:
    """The engine of one partition, driven by the coordinator's requests."""

    def __init__(self, spec: PartitionSpec, config: EngineConfig) -> None:
        self.engine = ActorEngine(config, spec.store, resume=spec.resume, shards=1)
        self.collector = CheckpointCollector()  # started by `run_partition`
        meta = self.engine.meta() if spec.resume else {}
        self.checkpoint_line = int(meta.get("checkpoint_line", "0"))

    def apply(self, lines: Sequence[PartitionLine], horizon: int | None) -> None:
        """Apply the lines of this partition's customers, then timers up to `horizon`."""
        engine = self.engine
        for line, raw, late_at in lines:  # the coordinator skips what this part has
            event = parse_line(raw, line)
            if isinstance(event, Rejected):  # the coordinator validated it: cannot happen
                raise ValueError(f"line {line}: {event.reason}")
            if late_at is None:
                engine.add(line, event, event.at, False, raw)
            else:
                engine.add(line, event, from_micros(late_at), True, raw)
        engine.apply(None if horizon is None else from_micros(horizon))

    def handle(self, request: PartitionRequest) -> PartitionDone | None:
        """Handle one request; its answer, if it has one."""
        engine = self.engine
        if isinstance(request, PartitionApply):
            self.apply(request.lines, request.horizon)
            return None
        if isinstance(request, PartitionDrain):
            engine.drain()
            return PartitionDone()
        if isinstance(request, PartitionNextDue):
            engine.drain()
            due = engine.next_due()
            return PartitionDone(None if due is None else to_micros(due))
        if isinstance(request, PartitionCheckpoint):
            engine.checkpoint(
                Cut(request.meta, from_micros(request.now), request.max_active, request.budget)
            )
            self.collector.checkpoint(request.meta.get("status", RUNNING))
            return PartitionDone()
        raise ValueError(f"partition: unknown request {request!r}")


_GONE = object()  # the coordinator's end of the pipe closed


def _read_ahead(conn: Connection) -> queue.Queue[Any]:
    """Receive requests on a thread, up to READ_AHEAD ahead of the engine.

    The coordinator's send blocks only when this partition is that far behind, not
    whenever the pipe is full — so one busy partition does not stall the others.
    """
    inbox: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)

    def receive() -> None:
        try:
            while True:
                message = conn.recv()
                inbox.put(message)
                if isinstance(message, PartitionStop):
                    return
        except (EOFError, OSError):
            inbox.put(_GONE)

    threading.Thread(target=receive, name="partition-inbox", daemon=True).start()
    return inbox


def run_partition(conn: Connection, spec: PartitionSpec) -> None:
    """The partition process's main function (started by the coordinator)."""
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # a restricted machine: run unpinned
            os.sched_setaffinity(0, {spec.cpu})
    if spec.quiet:  # failures still reach the coordinator, through the pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    # Ctrl-C reaches the whole process group; the coordinator alone decides, and stops
    # its partitions (each rolls back what it had not committed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.setswitchinterval(spec.switch_interval)
    limit_malloc_arenas()  # before the engine's threads start
    partition: Partition | None = None
    try:
        partition = Partition(spec, load_config(spec.config_dir))
        partition.collector.start()  # the process is the partition's: never given back
        conn.send(PartitionReady(partition.checkpoint_line))
        inbox = _read_ahead(conn)
        while True:
            message = inbox.get()
            if message is _GONE:
                return  # the coordinator is gone: stop without committing
            if isinstance(message, PartitionStop):
                partition.engine.stop()
                partition = None
                conn.send(PartitionDone())
                return
            answer = partition.handle(message)
            if answer is not None:
                conn.send(answer)
    except BaseException as exc:  # report to the coordinator, whatever it was
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError):
            conn.send(PartitionError(f"partition {spec.index}: {detail}", traceback.format_exc()))
    finally:
        if partition is not None:
            partition.engine.stop()
        conn.close()
