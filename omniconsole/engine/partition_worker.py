"""One engine partition: a process running the actor runtime for a share of the customers.

The replay's coordinator reads and validates the log once, then sends each partition
the lines of its customers (`crc32(customer) % partitions`) with the clock time they
apply at. A partition is a whole engine on its own: profile shard, fatigue governor,
channel dispatchers and store writer, over its own part of the store. Every decision
depends only on one customer's history, and each customer lives in one partition, so
partitions never need to talk to each other — and on a machine with several cores they
run side by side instead of sharing one interpreter lock.

Protocol (over a `multiprocessing` connection, requests answered in order):

    coordinator ─ ("apply", [(line, raw, late_at_micros | None), ...], horizon) ─▶
    coordinator ─ ("drain",) / ("next_due",) / ("checkpoint", meta, now, max_active)
                  / ("stop",) ─▶ answered by ("ok", value)
    any failure ─▶ ("error", text), and the process exits

`apply` is not answered: a partition reads at most READ_AHEAD requests ahead, and the
coordinator's send blocks beyond that (back-pressure). On start the partition
answers ("ready", checkpoint_line): the coordinator then sends a resumed partition
only the lines after the ones it has committed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from omniconsole.actors.runtime import EngineRuntime
from omniconsole.adapters.store.sqlite import event_store_row
from omniconsole.domain.config import EngineConfig, load_config
from omniconsole.domain.events import Rejected, parse_line
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.timeutil import from_micros, parse_timestamp, to_micros

#: requests a partition takes off the pipe before its engine has handled them
READ_AHEAD = 4
#: The engine holds a large, long-lived heap (profiles, timers, cap usage) and makes
#: little cyclic garbage; with the default thresholds (700, 10, 10) the collector's
#: repeated full passes over that heap were ~35% of replay CPU. Measured on a 200k-event
#: replay: 69 -> 47 us of CPU per event, same ledger.
ENGINE_GC_THRESHOLDS = (50_000, 20, 20)
#: one line of the log for a partition: (line number, raw bytes, applied-at if late)
Record = tuple[int, bytes, int | None]


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """What a partition process needs to start (picklable)."""

    index: int
    config_dir: Path
    store: Path
    resume: bool
    cpu: int | None = None  # pin the process to this CPU (its threads then share one core)
    quiet: bool = False  # stderr is a console's screen: write nothing there
    switch_interval: float = 0.02


class Partition:
    """The engine of one partition, driven by the coordinator's messages."""

    def __init__(self, spec: PartitionSpec, config: EngineConfig) -> None:
        self.spec = spec
        self.config = config
        self.runtime = EngineRuntime(
            config,
            spec.store,
            fresh=not spec.resume,
            shards=1,
            store_backed=spec.resume,
            # pinned, its threads share one core: the cheaper inserts win
            gil_free_inserts=spec.cpu is None,
        )
        self.checkpoint_line = 0

    def resume(self) -> None:
        """Continue from this part's last checkpoint: its timers and cap usage."""
        runtime = self.runtime
        meta: dict[str, str] = runtime.store(lambda s: s.meta())
        self.checkpoint_line = int(meta.get("checkpoint_line", "0"))
        clock = parse_timestamp(meta["clock"]) if meta.get("clock") else None
        runtime.restore(None if clock is None else clock - self.config.policy.longest_window)

    def apply(self, records: list[Record], horizon: int | None) -> None:
        """Apply the lines of this partition's customers, then timers up to `horizon`."""
        events: list[TimedEvent] = []
        rows: list[tuple[Any, ...]] = []
        for line, raw, late_at in records:  # the coordinator skips what this part has
            event = parse_line(raw, line)
            if isinstance(event, Rejected):  # the coordinator validated it: cannot happen
                raise ValueError(f"line {line}: {event.reason}")
            at = event.at if late_at is None else from_micros(late_at)
            rows.append(event_store_row(line, event, at, late_at is not None, raw))
            events.append(TimedEvent(at, event))
        self.runtime.write("events", rows)
        self.runtime.apply(events, None if horizon is None else from_micros(horizon))

    def handle(self, message: tuple[Any, ...]) -> tuple[bool, Any]:
        """Handle one request; (answer?, value)."""
        kind = message[0]
        runtime = self.runtime
        if kind == "apply":
            self.apply(message[1], message[2])
            return False, None
        if kind == "drain":
            runtime.drain()
            return True, None
        if kind == "next_due":
            runtime.drain()
            due = runtime.next_due()
            return True, None if due is None else to_micros(due)
        if kind == "checkpoint":
            meta, now, max_active = message[1], message[2], message[3]
            runtime.checkpoint(meta, from_micros(now), max_active=max_active)
            return True, None
        raise ValueError(f"partition: unknown request {kind!r}")


def _read_ahead(conn: Connection) -> queue.Queue[tuple[Any, ...]]:
    """Receive requests on a thread, up to READ_AHEAD ahead of the engine.

    The coordinator's send blocks only when this partition is that far behind, not
    whenever the pipe is full — so one busy partition does not stall the others.
    """
    inbox: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=READ_AHEAD)

    def receive() -> None:
        try:
            while True:
                message = conn.recv()
                inbox.put(message)
                if message[0] == "stop":
                    return
        except (EOFError, OSError):
            inbox.put(("gone",))

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
    gc.set_threshold(*ENGINE_GC_THRESHOLDS)
    partition: Partition | None = None
    try:
        partition = Partition(spec, load_config(spec.config_dir))
        if spec.resume:
            partition.resume()
        conn.send(("ready", partition.checkpoint_line))
        inbox = _read_ahead(conn)
        while True:
            message = inbox.get()
            if message[0] == "gone":
                return  # the coordinator is gone: stop without committing
            if message[0] == "stop":
                partition.runtime.stop()
                partition = None
                conn.send(("ok", None))
                return
            answer, value = partition.handle(message)
            if answer:
                conn.send(("ok", value))
    except BaseException as exc:  # report to the coordinator, whatever it was
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError):
            conn.send(("error", f"partition {spec.index}: {detail}", traceback.format_exc()))
    finally:
        if partition is not None:
            partition.runtime.stop()
        conn.close()
