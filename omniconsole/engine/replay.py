"""`omniconsole replay`: an event log through the engine on a simulated clock (SPEC §6).

The driver reads the log in file order, rejects bad lines, drops duplicates, clamps late
events to the clock, and hands time-ordered batches to the runtime. Each batch carries a
*horizon* — the time of the next event — and timers due before it fire within the batch,
so a timer at the same instant as an event fires after that event. Checkpoints commit a
consistent cut (events, decisions, profiles, log position) so `--resume` after a crash
continues from the last one and writes the same ledger as an uninterrupted run.

The engine runs either in this process (`partitions=1`) or as partition processes
(`omniconsole.engine.partitioned`), one per share of the customers; the driver is the same.
Partition processes are started with `spawn`: a script that calls `run_replay` with
`partitions > 1` must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from omniconsole.actors.runtime import ActorEngine
from omniconsole.adapters.store import Store, is_postgres_url, store_at
from omniconsole.adapters.store.base import LedgerSummary, StoreReader
from omniconsole.adapters.store.parts import PARTS_KEY
from omniconsole.domain.assignment import Assigner
from omniconsole.domain.channel_plan import DIGESTED
from omniconsole.domain.channels import Channel
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Rejected, parse_line
from omniconsole.domain.governor import HELD_OUT
from omniconsole.domain.outcomes import measured_journeys, outcomes_report
from omniconsole.domain.records import RejectRecord
from omniconsole.domain.timeutil import EPOCH, format_timestamp, parse_timestamp
from omniconsole.engine.collector import CheckpointCollector, limit_malloc_arenas
from omniconsole.engine.partitioned import PartitionedEngine
from omniconsole.engine.protocol import Cut, Engine
from omniconsole.engine.replay_driver import (
    TICK,
    EventCounts,
    ProgressPublisher,
    ReplayDriver,
)
from omniconsole.engine.replay_watch import ReplayWatcher, ResumePoint
from omniconsole.engine.seen_ids import SeenIds

OUTCOMES = ("sent", "deferred", "suppressed", "failed")


class ReplayError(Exception):
    """A problem the user can fix (missing file, unwritable output); one line, no traceback."""


#: In-process, each batch costs a round of waits between the reading thread and the
#: shard: 16,000 events rather than 4,000 took ~12 % less CPU on a 50k-customer log
#: (paired runs, the same ledger).
IN_PROCESS_BATCH = 16_000
#: Partitions get their batches from the coordinator, and 16,000 changed nothing in
#: their speed (paired, 2 partitions) but raised the million-customer run's peak memory
#: from 1,385 to 1,503 MB summed: each process holds a larger batch in flight.
PARTITION_BATCH = 4_000
#: profiles kept in memory, at least, when `--max-active` is not given
DEFAULT_MAX_ACTIVE = 50_000


@dataclass(slots=True)
class ReplayOptions:
    """What to replay and where to write. Defaults suit a headless run."""

    log: Path
    db: Path | str  # a SQLite file, or a `postgresql://` URL
    ledger: Path
    report: Path
    rejects: Path | None = None
    config_dir: Path | None = None
    until: datetime | None = None
    resume: bool = False
    checkpoint_seconds: float = 15.0
    checkpoint_events: int = 250_000
    # Events handed to the engine at once; None: IN_PROCESS_BATCH for the engine in this
    # process, PARTITION_BATCH for partitions (see there why they differ)
    batch_events: int | None = None
    batch_span: timedelta | None = None
    # One profile shard, as in each partition process: the engine's threads share one
    # interpreter lock, so a second shard ran nothing in parallel and only split every
    # batch in two (paired runs, 50k customers: 4 % less CPU with one)
    shards: int = 1
    #: profiles kept in memory at most; None (the default): a budget of at least
    #: DEFAULT_MAX_ACTIVE, more while few customers are known (`Cut.budget`)
    max_active: int | None = None
    partitions: int = 1  # engine processes; 1 runs the engine in this process (the CLI
    # defaults to one per CPU); with `ray`, 0 means one per node of the cluster
    ray: str | None = None  # run the partitions as Ray actors: a cluster address, or "auto"
    watcher: ReplayWatcher | None = None  # told where it resumes and how far it has read

    def cut(self, meta: Mapping[str, str], now: datetime) -> Cut:
        """A checkpoint's cut, with the profiles it lets stay in memory."""
        if self.max_active is None:
            return Cut(meta, now, DEFAULT_MAX_ACTIVE, budget=True)
        return Cut(meta, now, self.max_active)


def _check_outputs(options: ReplayOptions) -> None:
    if not options.log.is_file():
        raise ReplayError(f"log file not found: {options.log}")
    db = None if isinstance(options.db, str) and is_postgres_url(options.db) else Path(options.db)
    for path in (options.ledger, options.report, options.rejects, db):
        if path is None:
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ReplayError(f"cannot write {path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ReplayError(f"cannot write {path}: permission denied")


def run_replay(options: ReplayOptions, pacer: Pacer | None = None) -> dict[str, Any]:
    """Replay `options.log`; write ledger, report and rejects; return the report."""
    config = load_config(options.config_dir or shipped_config_dir())
    _check_outputs(options)
    store = store_at(options.db)
    limit = store.max_partitions()
    wanted = options.partitions
    if not (1 <= wanted <= limit or (wanted == 0 and options.ray is not None)):
        raise ReplayError(f"partitions must be between 1 and {limit} for {store.describe()},"
                          f" got {wanted}")  # fmt: skip
    resume = options.resume and store.exists()
    count = _stored_parts(store) if resume else wanted
    if resume and options.ray is not None and count == 0:
        raise ReplayError("this store was written by one engine, not partitions: resume it"
                          " without --ray")  # fmt: skip
    if not resume:
        store.remove_parts()  # a previous run's parts must not be read as this run's
    switch = sys.getswitchinterval()
    collector = CheckpointCollector()
    collector.start(automatic=pacer is not None)  # a console's UI makes cyclic garbage
    if count == 1 and pacer is None:
        limit_malloc_arenas()  # the engine's threads are about to start here
    if pacer is None:
        # Headless, the engine's threads all want the GIL; handing it over less often
        # costs less (measured ~6%). Under a console, the default keeps keys snappy.
        sys.setswitchinterval(0.02)
    try:
        engine, static = _start_engine(options, config, store, count, resume)
        try:
            return _run(options, config, store, engine, pacer, resume, static, collector)
        finally:
            engine.stop()
    finally:
        sys.setswitchinterval(switch)
        collector.stop()


def _stored_parts(store: Store) -> int:
    """The partitions the run in `store` was written with; 0: one engine, no parts."""
    with contextlib.closing(store.reader()) as reader:
        names = orjson.loads(reader.meta().get(PARTS_KEY, "[]"))
    return len(names) if isinstance(names, list) else 0


def _start_engine(
    options: ReplayOptions, config: EngineConfig, store: Store, count: int, resume: bool
) -> tuple[Engine, dict[str, str]]:
    """The engine for `count` partitions (0 resumed: one engine without parts; 0 with
    Ray: one per node), and the run's static meta facts."""
    static = _static_meta(options, config)
    if options.ray is not None:
        from omniconsole.engine.cluster import RayEngine

        engine = RayEngine(config.directory, store, count, resume=resume, address=options.ray)
        static.update(store.parts_meta(engine.count))
        return engine, static
    if count == 0 or (count == 1 and not resume):
        return ActorEngine(config, store, resume=resume, shards=options.shards), static
    static.update(store.parts_meta(count))
    return PartitionedEngine(config.directory, store, count, resume=resume), static


def _static_meta(options: ReplayOptions, config: EngineConfig) -> dict[str, str]:
    channels = {
        c.value: {"configured": True, "mode": "dry-run", "detail": "replay: not sent"}
        for c in Channel
    }
    return {
        "mode": "replay",
        "source": str(options.log),
        "config_dir": str(config.directory),
        "policy": orjson.dumps(config.policy.to_json()).decode(),
        "journeys": orjson.dumps([j.to_json() for j in config.journeys]).decode(),
        "channels": orjson.dumps(channels).decode(),
        "status": "running",
    }


def _resume_point(meta: Mapping[str, str], reader_decisions: int) -> ResumePoint:
    return ResumePoint(
        line=int(meta.get("checkpoint_line", "0") or 0),
        clock=meta.get("view_clock") or meta.get("clock") or None,
        decisions=reader_decisions,
        status=meta.get("status", ""),
        until=meta.get("until") or None,
    )


def _run(
    options: ReplayOptions,
    config: EngineConfig,
    store: Store,
    engine: Engine,
    pacer: Pacer | None,
    resume: bool,
    static: dict[str, str],
    collector: CheckpointCollector,
) -> dict[str, Any]:
    driver = ReplayDriver(options, config, store, engine, pacer, collector)
    confirm = _Committed(store)
    seen = driver.seen = SeenIds(confirm)
    try:
        return _read(driver, seen, confirm, resume, static)
    finally:
        confirm.close()


class _Committed:
    """Whether a message id is among the store's applied events of the lines before
    `line` (the line being read): a digest hit of `SeenIds` confirmed exactly. A part
    may hold lines past the resumed checkpoint (it skips them when they come again);
    those are read again now and must not count as seen before they are."""

    __slots__ = ("line", "reader", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reader: StoreReader | None = None  # opened on the first hit, if any
        self.line = 0

    def __call__(self, message_id: str) -> bool:
        if self.reader is None:
            self.reader = self.store.reader()
        return self.reader.has_message_id(message_id, before_line=self.line)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _read(
    driver: ReplayDriver,
    seen: SeenIds,
    confirm: _Committed,
    resume: bool,
    static: dict[str, str],
) -> dict[str, Any]:
    """Read the log (from the resumed checkpoint), then play out the timers after it."""
    options, engine, store, pacer = driver.options, driver.engine, driver.store, driver.pacer
    start_line = 0
    until = options.until
    if resume:
        meta = engine.meta()
        with contextlib.closing(store.reader()) as reader:
            point = _resume_point(meta, reader.decision_count())
            if point.status == "done" or (
                point.status == "until"
                and point.until is not None
                and until is not None
                and format_timestamp(until) == point.until
            ):
                if options.watcher is not None:
                    options.watcher.resuming(point)
                return _finish(driver, done_already=True)
            if (
                point.status == "until"
                and point.until is not None
                and until is not None
                and until < parse_timestamp(point.until)
            ):
                raise ReplayError(
                    f"the replay in {store.describe()} stopped at --until {point.until}; "
                    "it can only go forward: resume with a later --until, or none"
                )
            seen.seed(reader.message_ids(up_to_line=point.line))
        start_line = point.line
        driver.counts = EventCounts(**orjson.loads(meta.get("counters", "{}")))
        driver.clock = parse_timestamp(meta["clock"]) if meta.get("clock") else None
        view = meta.get("view_clock")
        driver.view = parse_timestamp(view) if view else None
        if options.watcher is not None:
            options.watcher.resuming(point)
    engine.checkpoint(
        options.cut({**static, **driver.meta(start_line, "running"), "until": ""},
                    driver.clock or EPOCH)
    )  # fmt: skip
    driver.mark_applied(start_line)
    batch_events = options.batch_events or (
        IN_PROCESS_BATCH if isinstance(engine, ActorEngine) else PARTITION_BATCH
    )
    span = options.batch_span
    if pacer is not None and span is None:
        span = timedelta(minutes=10)  # small steps of simulated time, so pacing is smooth
    driver.span = span
    counts = driver.counts
    add = engine.add
    line_no = 0
    progress = driver.progress = ProgressPublisher(driver, options.log.stat().st_size)
    with options.log.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no <= start_line:
                continue
            if not line_no & 1023:
                progress.tick(line_no, handle.tell())
            if not raw.strip():
                continue
            parsed = parse_line(raw, line_no)
            if isinstance(parsed, Rejected):
                counts.read += 1
                counts.rejected += 1
                engine.write([RejectRecord(line_no, parsed.reason, parsed.raw)])
                continue
            if until is not None and parsed.at > until:
                line_no -= 1
                break
            message_id = parsed.message_id
            confirm.line = line_no
            if message_id is not None and message_id in seen:
                counts.read += 1
                counts.duplicates += 1
                continue
            clock = driver.clock
            effective = parsed.at if clock is None or parsed.at >= clock else clock
            start = driver.batch_start
            if start is not None and (
                driver.batch_size >= batch_events
                or (span is not None and effective - start >= span)
            ):
                driver.flush(effective, line_no - 1)
                if driver.stopped:
                    break
            counts.read += 1
            counts.applied += 1
            late = clock is not None and parsed.at < clock
            if late:
                counts.late += 1
            driver.clock = effective
            if message_id is not None:
                seen.add(message_id)
            add(line_no, parsed, effective, late, raw)
            driver.batch_size += 1
            if driver.batch_start is None:
                driver.batch_start = effective
        progress.tick(line_no, handle.tell(), force=True)
    if driver.stopped:
        return _finish(driver, stopped=True)
    last_line = line_no
    final = None if until is None else until + TICK
    # The tail of the simulation (timers after the last event) plays out in steps of
    # simulated time: paced for a console, and never all at once (memory stays flat).
    step = span or timedelta(hours=6)
    edge = (driver.clock + TICK) if driver.clock else final
    driver.flush(edge, last_line)
    engine.drain()  # timers the last batch sets must be on the shards' heaps first
    due = engine.next_due()
    while due is not None and not driver.stopped and (until is None or due <= until):
        target = due + step if final is None else min(due + step, final)
        if pacer is not None:
            driver.walk(target, last_line)  # the clock moves through the quiet hours too
        else:
            driver.advance(target, last_line)
        engine.drain()
        driver.clock = max(driver.clock or target, min(target, due + step))
        driver.mark_applied(last_line)
        due = engine.next_due()
    if driver.stopped:
        return _finish(driver, stopped=True)
    if until is not None:
        # stopped by --until: resumable with a later --until (or none), which continues
        # exactly as one run to that time would
        driver.view = until
        driver.checkpoint(last_line, "until", {"until": format_timestamp(until)})
    else:
        driver.checkpoint(last_line, "done")
    return _finish(driver)


def _finish(
    driver: ReplayDriver, *, done_already: bool = False, stopped: bool = False
) -> dict[str, Any]:
    engine, options = driver.engine, driver.options
    if done_already:
        meta = engine.meta()
        driver.counts = EventCounts(**orjson.loads(meta.get("counters", "{}")))
    elif stopped:
        driver.checkpoint_applied("stopped")
    driver.store.forget_progress()
    if options.watcher is not None:
        options.watcher.finished()
    # Everything is committed: read it back through one connection over every part.
    with contextlib.closing(driver.store.reader()) as reader:
        report = build_report(driver.config, driver.counts, reader.ledger_summary())
        measured = measured_journeys(driver.config)
        if measured:
            report["outcomes"] = outcomes_report(driver.config, reader.instances(measured))
        if stopped:
            return report
        reader.export_ledger(options.ledger)
        if options.rejects is not None:
            reader.export_rejects(options.rejects)
    options.report.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return report


def build_report(
    config: EngineConfig, counts: EventCounts, summary: LedgerSummary
) -> dict[str, Any]:
    """The report of SPEC §6 from the event counts and the store's ledger summary."""
    journeys: dict[str, Any] = {}
    for journey in sorted(j.name for j in config.journeys):
        entered, converted = summary.journeys.get(journey, (0, 0))
        journeys[journey] = {
            "entered": entered,
            "converted": converted,
            "conversion_rate": round(converted / entered, 4) if entered else 0.0,
        }
    by_channel = summary.channels
    # `held_out` exists only where a config holds customers out: the shipped report keeps
    # its keys (and bytes)
    kinds = (*OUTCOMES, HELD_OUT) if Assigner(config).active else OUTCOMES
    channels = {c.value: {o: by_channel.get(c.value, {}).get(o, 0) for o in kinds} for c in Channel}
    no_channel = by_channel.get(None, {})
    report = {
        "events": asdict(counts),
        "journeys": journeys,
        "channels": channels,
        "suppressed_by_reason": dict(summary.reasons),
        "handoffs": summary.handoffs,
        "decisions": {o: sum(v.get(o, 0) for v in by_channel.values()) for o in kinds},
        "unrouted": {o: no_channel.get(o, 0) for o in kinds if no_channel.get(o, 0)},
    }
    joined = no_channel.get(DIGESTED, 0)
    if joined:  # only where digests are configured (docs/channels.md)
        report["digested"] = joined
    return report
