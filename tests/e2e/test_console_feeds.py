"""What the engine keeps for consoles: counts committed with each checkpoint, a clock
that covers what it commits, and progress while it reads."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.parts import open_combined
from omniconsole.adapters.store.progress import read_progress
from omniconsole.domain.clock import Pacer
from omniconsole.domain.timeutil import parse_timestamp
from omniconsole.engine.replay import ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"
WALKTHROUGH = REPO / "tests" / "e2e" / "scenarios" / "walkthrough.jsonl"


def ledger_fold(ledger: Path) -> Counter[tuple[str, str, str, str, str, int, str]]:
    """The console's counts, computed the slow way: by reading every ledger line."""
    fold: Counter[tuple[str, str, str, str, str, int, str]] = Counter()
    for raw in ledger.read_bytes().splitlines():
        x = orjson.loads(raw)
        handoff = (
            f"{x['handoff_from']['channel']}>{x['channel'] or ''}" if x["handoff_from"] else ""
        )
        fold[(x["journey"], x["step"], x["channel"] or "", x["outcome"], x["reason"] or "",
              int(x["message_id"].endswith(":fallback")), handoff)] += 1  # fmt: skip
    return fold


def stored_counts(db: Path) -> tuple[Counter[tuple[object, ...]], Counter[tuple[str, str]]]:
    conn = open_combined(db)
    try:
        decisions: Counter[tuple[object, ...]] = Counter()
        for *key, n in conn.execute("SELECT * FROM counters"):
            decisions[tuple(key)] += n
        instances: Counter[tuple[str, str]] = Counter()
        for journey, status, n in conn.execute("SELECT * FROM instance_counters"):
            instances[(journey, status)] += n
        truth: Counter[tuple[str, str]] = Counter()
        for journey, status, n in conn.execute(
            "SELECT journey, status, COUNT(*) FROM journey_instances GROUP BY 1, 2"
        ):
            truth[(journey, "entered")] += n
            if status != "active":
                truth[(journey, status)] += n
        assert instances == truth
        return decisions, instances
    finally:
        conn.close()


@pytest.mark.parametrize("partitions", [1, 2])
def test_the_engine_counts_every_decision_as_the_ledger_says(
    tmp_path: Path, partitions: int
) -> None:
    """The counters committed with the checkpoints equal a fold of the exported ledger,
    for one process and for partitions (each part counts its own customers)."""
    run_replay(ReplayOptions(log=SAMPLE, db=tmp_path / "s.db", ledger=tmp_path / "l.jsonl",
                             report=tmp_path / "r.json", partitions=partitions,
                             checkpoint_events=300, batch_events=100))  # fmt: skip
    decisions, _ = stored_counts(tmp_path / "s.db")
    assert decisions == ledger_fold(tmp_path / "l.jsonl")


class QuitAfter(Pacer):
    """An operator who quits the console after `steps` steps of simulated time."""

    def __init__(self, steps: int) -> None:
        super().__init__(None)
        self.steps = steps

    def wait_for(self, sim: datetime) -> bool:
        self.steps -= 1
        return self.steps > 0


def test_counts_stay_exact_across_a_stop_and_a_resume(tmp_path: Path) -> None:
    options = ReplayOptions(log=SAMPLE, db=tmp_path / "s.db", ledger=tmp_path / "l.jsonl",
                            report=tmp_path / "r.json", checkpoint_seconds=0.0)  # fmt: skip
    run_replay(options, pacer=QuitAfter(400))
    run_replay(replace(options, resume=True))
    decisions, _ = stored_counts(tmp_path / "s.db")
    assert decisions == ledger_fold(tmp_path / "l.jsonl")


class Watching(Pacer):
    """A console's pacer at full speed that looks at the store at every step: what is
    committed must never be ahead of the committed clock (wrong item 1)."""

    def __init__(self, db: Path) -> None:
        super().__init__(None)
        self.reader = ConsoleReader(db)
        self.clocks: list[str] = []
        self.checked = 0

    def wait_for(self, sim: datetime) -> bool:
        if not self.reader.path.exists():
            return True
        with self.reader.read() as cut:
            status = cut.status()
            if not status.ready or status.clock is None:
                return True
            clock = status.clock
            newest = cut.cut.conn.execute("SELECT MAX(at) FROM ledger").fetchone()[0]
        assert newest is None or parse_timestamp(newest) <= parse_timestamp(clock), (
            f"a decision at {newest} is shown while the clock says {clock}"
        )
        self.checked += 1
        if not self.clocks or self.clocks[-1] != clock:
            self.clocks.append(clock)
        return True


def test_a_watched_replay_never_shows_what_its_clock_has_not_reached(tmp_path: Path) -> None:
    """The walkthrough has two and a half quiet days (02-03 01:00 to 02-05 13:30): the
    committed clock must walk through them, and no decision may be committed ahead of it."""
    db = tmp_path / "s.db"
    watcher = Watching(db)
    run_replay(
        ReplayOptions(log=WALKTHROUGH, db=db, ledger=tmp_path / "l.jsonl",
                      report=tmp_path / "r.json", checkpoint_seconds=0.0),
        pacer=watcher,
    )  # fmt: skip
    assert watcher.checked > 100
    quiet = [c for c in watcher.clocks if "2026-02-03T02" <= c <= "2026-02-05T13"]
    assert len(quiet) >= 50  # ten simulated minutes a step: the clock moved through them


def test_a_headless_replay_says_how_far_it_has_read_beside_its_store(tmp_path: Path) -> None:
    """Between checkpoints (15 s apart headless) a console can still show progress."""
    db = tmp_path / "s.db"
    seen: list[int] = []
    done = threading.Event()

    class Watcher:
        def resuming(self, point: object) -> None: ...

        def progress(self, progress: object) -> None:
            fact = read_progress(db)
            if fact is not None:
                seen.append(fact.line)

        def finished(self) -> None:
            done.set()

    run_replay(ReplayOptions(log=SAMPLE, db=db, ledger=tmp_path / "l.jsonl",
                             report=tmp_path / "r.json", watcher=Watcher()))  # fmt: skip
    assert done.is_set()
    assert seen and seen[-1] > 0  # published while it read
    assert read_progress(db) is None  # and taken away once the replay was over


def test_a_store_written_before_the_counts_were_kept_gets_them_when_reopened(
    tmp_path: Path,
) -> None:
    """`serve` restarted on its old store after an upgrade: the writer counts what the
    store already holds, once, so the console's figures include it."""
    import sqlite3

    options = ReplayOptions(log=SAMPLE, db=tmp_path / "s.db", ledger=tmp_path / "l.jsonl",
                            report=tmp_path / "r.json", checkpoint_seconds=0.0)  # fmt: skip
    run_replay(options, pacer=QuitAfter(400))
    with sqlite3.connect(tmp_path / "s.db") as conn:  # as a version 2 store had it
        for table in ("counters", "counters_hourly", "instance_counters"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    run_replay(replace(options, resume=True))
    decisions, _ = stored_counts(tmp_path / "s.db")  # also checks the instance counts
    assert decisions == ledger_fold(tmp_path / "l.jsonl")
