"""`omniconsole replay`: an event log through the engine on a simulated clock (SPEC §6).

The driver reads the log in file order, rejects bad lines, drops duplicates, clamps late
events to the clock, and hands time-ordered batches to the runtime. Each batch carries a
*horizon* — the time of the next event — and timers due before it fire within the batch,
so a timer at the same instant as an event fires after that event. Checkpoints commit a
consistent cut (events, decisions, profiles, log position) so `--resume` after a crash
continues from the last one and writes the same ledger as an uninterrupted run.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from actors.runtime import EngineRuntime
from omniconsole.domain.channels import Channel
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Rejected, parse_line
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp

OUTCOMES = ("sent", "deferred", "suppressed", "failed")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the clock before the first event


class ReplayError(Exception):
    """A problem the user can fix (missing file, unwritable output); one line, no traceback."""


@dataclass(slots=True)
class ReplayOptions:
    """What to replay and where to write. Defaults suit a headless run."""

    log: Path
    db: Path
    ledger: Path
    report: Path
    rejects: Path | None = None
    config_dir: Path | None = None
    until: datetime | None = None
    resume: bool = False
    fresh: bool = False  # a run without `resume` always starts the store afresh
    checkpoint_seconds: float = 15.0
    checkpoint_events: int = 250_000
    batch_events: int = 4000
    batch_span: timedelta | None = None
    shards: int = 2
    max_active: int = 50_000


@dataclass(slots=True)
class EventCounts:
    """The report's `events` section."""

    read: int = 0
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    late: int = 0


@dataclass(slots=True)
class _Driver:
    options: ReplayOptions
    config: EngineConfig
    runtime: EngineRuntime
    pacer: Pacer | None
    counts: EventCounts = field(default_factory=EventCounts)
    clock: datetime | None = None
    batch: list[TimedEvent] = field(default_factory=list)
    event_rows: list[tuple[Any, ...]] = field(default_factory=list)
    reject_rows: list[tuple[Any, ...]] = field(default_factory=list)
    since_checkpoint: int = 0
    last_checkpoint: float = field(default_factory=time.monotonic)
    stopped: bool = False

    def meta(self, line: int, status: str) -> dict[str, str]:
        return {
            "checkpoint_line": str(line),
            "clock": "" if self.clock is None else format_timestamp(self.clock),
            "counters": orjson.dumps(asdict(self.counts)).decode(),
            "status": status,
        }

    def flush(self, horizon: datetime | None, line: int) -> None:
        """Hand the current batch to the runtime; checkpoint when one is due."""
        if self.pacer is not None and self.batch and not self.pacer.wait_for(self.batch[0].at):
            self.stopped = True
            return
        runtime = self.runtime
        runtime.write("events", self.event_rows)
        runtime.write("rejects", self.reject_rows)
        self.since_checkpoint += len(self.batch)
        runtime.apply(self.batch, horizon)
        self.batch, self.event_rows, self.reject_rows = [], [], []
        options = self.options
        if (
            self.since_checkpoint >= options.checkpoint_events
            or time.monotonic() - self.last_checkpoint >= options.checkpoint_seconds
        ):
            self.checkpoint(line, "running")

    def checkpoint(self, line: int, status: str) -> None:
        now = self.clock or EPOCH
        self.runtime.checkpoint(self.meta(line, status), now, max_active=self.options.max_active)
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()


def _check_outputs(options: ReplayOptions) -> None:
    if not options.log.is_file():
        raise ReplayError(f"log file not found: {options.log}")
    for path in (options.ledger, options.report, options.rejects, options.db):
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
    resume = options.resume and options.db.exists()
    switch = sys.getswitchinterval()
    if pacer is None:
        # Headless, the engine's threads all want the GIL; handing it over less often
        # costs less (measured ~6%). Under a console, the default keeps keys snappy.
        sys.setswitchinterval(0.02)
    runtime = EngineRuntime(
        config, options.db, fresh=not resume, shards=options.shards, store_backed=resume
    )
    try:
        return _run(options, config, runtime, pacer, resume)
    finally:
        runtime.stop()
        sys.setswitchinterval(switch)


def _static_meta(options: ReplayOptions, config: EngineConfig) -> dict[str, str]:
    channels = {
        c.value: {"configured": True, "mode": "dry-run", "detail": "replay: recorded, not sent"}
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


def _run(
    options: ReplayOptions,
    config: EngineConfig,
    runtime: EngineRuntime,
    pacer: Pacer | None,
    resume: bool,
) -> dict[str, Any]:
    driver = _Driver(options, config, runtime, pacer)
    seen: set[str] = set()
    start_line = 0
    if resume:
        meta: dict[str, str] = runtime.store(lambda s: s.meta())
        if meta.get("status") == "done":
            return _finish(driver, done_already=True)
        start_line = int(meta.get("checkpoint_line", "0"))
        driver.counts = EventCounts(**orjson.loads(meta.get("counters", "{}")))
        driver.clock = parse_timestamp(meta["clock"]) if meta.get("clock") else None
        seen = runtime.store(lambda s: s.message_ids())
        heads = [(c, parse_timestamp(d)) for c, d in runtime.store(lambda s: s.timer_heads())]
        usage: list[tuple[str, datetime, str]] = []
        if driver.clock is not None:
            since = driver.clock - config.policy.longest_window
            usage = [
                (c, parse_timestamp(a), ch)
                for c, a, ch in runtime.store(lambda s: s.cap_usage_since(since))
            ]
        runtime.preload(heads, usage)
    runtime.checkpoint(
        {**_static_meta(options, config), **driver.meta(start_line, "running")},
        driver.clock or EPOCH,
        max_active=options.max_active,
    )
    until = options.until
    batch_events = options.batch_events
    span = options.batch_span
    if pacer is not None and span is None:
        span = timedelta(minutes=10)  # small steps of simulated time, so pacing is smooth
    counts = driver.counts
    line_no = 0
    with options.log.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no <= start_line:
                continue
            if not raw.strip():
                continue
            parsed = parse_line(raw, line_no)
            if isinstance(parsed, Rejected):
                counts.read += 1
                counts.rejected += 1
                driver.reject_rows.append((line_no, parsed.reason, parsed.raw))
                continue
            if until is not None and parsed.at > until:
                line_no -= 1
                break
            message_id = parsed.message_id
            if message_id is not None and message_id in seen:
                counts.read += 1
                counts.duplicates += 1
                continue
            clock = driver.clock
            effective = parsed.at if clock is None or parsed.at >= clock else clock
            batch = driver.batch
            if batch and (
                len(batch) >= batch_events or (span is not None and effective - batch[0].at >= span)
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
            stamp = format_timestamp(parsed.at)
            driver.event_rows.append(
                (
                    line_no,
                    parsed.customer,
                    stamp,
                    format_timestamp(effective) if late else stamp,
                    parsed.kind,
                    parsed.name,
                    message_id,
                    int(late),
                    raw.decode("utf-8", "replace").rstrip("\r\n"),
                )
            )
            driver.batch.append(TimedEvent(effective, parsed))
    if driver.stopped:
        return _finish(driver, stopped=True)
    last_line = line_no
    final = None if until is None else until + timedelta(microseconds=1)
    # The tail of the simulation (timers after the last event) plays out in steps of
    # simulated time: paced for a console, and never all at once (memory stays flat).
    step = span or (timedelta(hours=1) if pacer is not None else timedelta(hours=6))
    edge = (driver.clock + timedelta(microseconds=1)) if driver.clock else final
    driver.flush(edge, last_line)
    runtime.drain()  # timers the last batch sets must be on the shards' heaps first
    due = runtime.next_due()
    while due is not None and not driver.stopped and (until is None or due <= until):
        target = due + step if final is None else min(due + step, final)
        if pacer is not None and not pacer.wait_for(due):
            driver.stopped = True
            break
        runtime.apply([], target)
        runtime.drain()
        driver.clock = max(driver.clock or target, min(target, due + step))
        if time.monotonic() - driver.last_checkpoint >= options.checkpoint_seconds:
            driver.checkpoint(last_line, "running")
        due = runtime.next_due()
    if driver.stopped:
        return _finish(driver, stopped=True)
    driver.checkpoint(last_line, "done")
    return _finish(driver)


def _finish(
    driver: _Driver, *, done_already: bool = False, stopped: bool = False
) -> dict[str, Any]:
    runtime, options = driver.runtime, driver.options
    if done_already:
        meta: dict[str, str] = runtime.store(lambda s: s.meta())
        driver.counts = EventCounts(**orjson.loads(meta.get("counters", "{}")))
    elif stopped:
        driver.checkpoint(0, "stopped")
    report = build_report(driver.config, driver.counts, runtime.store(lambda s: s.ledger_summary()))
    if stopped:
        return report
    runtime.store(lambda s: s.export_ledger(options.ledger))
    if options.rejects is not None:
        rejects = options.rejects
        runtime.store(lambda s: s.export_rejects(rejects))
    options.report.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return report


def build_report(
    config: EngineConfig, counts: EventCounts, summary: dict[str, Any]
) -> dict[str, Any]:
    """The report of SPEC §6 from the event counts and the store's ledger summary."""
    journeys: dict[str, Any] = {}
    for journey in sorted(j.name for j in config.journeys):
        entered, converted = summary["journeys"].get(journey, (0, 0))
        journeys[journey] = {
            "entered": entered,
            "converted": converted,
            "conversion_rate": round(converted / entered, 4) if entered else 0.0,
        }
    by_channel: dict[str | None, dict[str, int]] = summary["channels"]
    channels = {
        c.value: {o: by_channel.get(c.value, {}).get(o, 0) for o in OUTCOMES} for c in Channel
    }
    no_channel = by_channel.get(None, {})
    return {
        "events": asdict(counts),
        "journeys": journeys,
        "channels": channels,
        "suppressed_by_reason": summary["reasons"],
        "handoffs": summary["handoffs"],
        "decisions": {o: sum(v.get(o, 0) for v in by_channel.values()) for o in OUTCOMES},
        "unrouted": {o: no_channel.get(o, 0) for o in OUTCOMES if no_channel.get(o, 0)},
    }
