"""A partitioned replay (engine processes per customer share) is the same replay, faster.

Same log and config ⇒ the same ledger bytes, report and rejects whatever the number of
partitions; the console and `inbox` read a partitioned store as one store.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.console_rows import CustomerRecord, DecisionFilter
from omniconsole.domain.clock import Pacer
from omniconsole.domain.generator import write_log
from omniconsole.engine.partitioned import PartitionedEngine, PartitionFailure
from omniconsole.engine.protocol import Cut
from omniconsole.engine.replay import ReplayError, ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"


def replay(log: Path, out: Path, partitions: int, **extra: Any) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    return run_replay(
        ReplayOptions(
            log=log,
            db=out / "store.db",
            ledger=out / "ledger.jsonl",
            report=out / "report.json",
            rejects=out / "rejects.jsonl",
            partitions=partitions,
            **extra,
        )
    )


@pytest.fixture(scope="module")
def tricky_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log plus what makes ordering hard: late lines, cross-customer duplicate
    message ids, bad lines and an event at the very instant of a timer."""
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    write_log(path, 400, 14, 5, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=12)
    lines = path.read_bytes().splitlines()
    extra = [
        # late: far behind the clock when read
        b'{"type":"track","userId":"late-1","event":"Signed Up","timestamp":"2026-03-02T00:00:01Z",'
        b'"traits":{"email":"late@example.com"},"messageId":"late-m1"}',
        # a message id already used by another customer: a duplicate, wherever it hashes
        b'{"type":"track","userId":"other-9","event":"Signed Up","timestamp":"2026-03-20T00:00:00Z",'
        b'"messageId":"late-m1"}',
        b"{not json",
        b'{"type":"track","userId":"x","timestamp":"2026-03-20T00:00:00Z"}',
    ]
    middle = len(lines) // 2
    path.write_bytes(b"\n".join([*lines[:middle], *extra, *lines[middle:]]) + b"\n")
    return path


@pytest.mark.parametrize("log_name", ["sample", "sample --until", "tricky"])
def test_partitions_write_the_same_ledger_report_and_rejects(
    log_name: str, tricky_log: Path, tmp_path: Path
) -> None:
    log = tricky_log if log_name == "tricky" else SAMPLE
    extra: dict[str, Any] = {}
    if log_name.endswith("--until"):  # the clock stops mid-log, timers still pending
        extra["until"] = datetime(2026, 3, 9, 12, tzinfo=UTC)
    single = replay(log, tmp_path / "one", 1, **extra)
    outputs = {}
    for partitions in (2, 3):
        report = replay(log, tmp_path / f"p{partitions}", partitions, **extra)
        assert report == single
        outputs[partitions] = tmp_path / f"p{partitions}"
    for name in ("ledger.jsonl", "rejects.jsonl", "report.json"):
        expected = (tmp_path / "one" / name).read_bytes()
        for out in outputs.values():
            assert (out / name).read_bytes() == expected, name
    if log_name == "tricky":
        events = single["events"]
        assert events["late"] >= 1 and events["duplicates"] >= 1 and events["rejected"] >= 2
    assert (tmp_path / "p3" / "store.p2.db").exists()


def without_ids(record: CustomerRecord | None) -> CustomerRecord | None:
    """A customer's record minus event row ids (each part numbers its own rows)."""
    if record is None:
        return None
    return replace(record, events=tuple(replace(e, id=0) for e in record.events))


def test_the_console_reads_a_partitioned_store_as_one(tmp_path: Path) -> None:
    replay(SAMPLE, tmp_path / "one", 1)
    replay(SAMPLE, tmp_path / "two", 2)
    one, two = (
        ConsoleReader(tmp_path / "one" / "store.db"),
        ConsoleReader(tmp_path / "two" / "store.db"),
    )
    try:
        with one.read() as c1, two.read() as c2:
            s1, s2 = c1.status(), c2.status()
            assert (s2.state, s2.status) == ("ready", "done")
            assert (s2.customers, s2.decisions) == (s1.customers, s1.decisions)
            assert c2.journeys() == c1.journeys()
            assert c2.channels() == c1.channels()
            assert c2.caps() == c1.caps()
            handoffs = DecisionFilter(handoffs=True)
            assert c2.decisions(handoffs) == c1.decisions(handoffs)
            assert c2.handoff_pairs() == c1.handoff_pairs()
            customers = [m.customer for m in c1.find_customers("c", limit=5)]
            assert customers
            for customer in customers:
                assert without_ids(c2.customer(customer)) == without_ids(c1.customer(customer))
    finally:
        one.close()
        two.close()


def test_inbox_reads_a_partitioned_store(tmp_path: Path) -> None:
    replay(SAMPLE, tmp_path, 2)
    reader = ConsoleReader(tmp_path / "store.db")
    with reader.read() as cut:
        row = cut.cut.conn.execute("SELECT customer FROM inbox LIMIT 1").fetchone()
    reader.close()
    assert row is not None, "the sample sends in-app messages"
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "inbox", row[0], "--db", str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "no in-app messages" not in done.stdout
    assert done.stdout.strip()


def test_a_fresh_run_drops_the_parts_of_an_earlier_run(tmp_path: Path) -> None:
    replay(SAMPLE, tmp_path, 3)
    assert (tmp_path / "store.p2.db").exists()
    replay(SAMPLE, tmp_path, 2)
    assert not (tmp_path / "store.p2.db").exists()
    replay(SAMPLE, tmp_path, 1)
    assert not list(tmp_path.glob("store.p*"))


def test_resume_keeps_the_partitioning_it_started_with(tmp_path: Path) -> None:
    """Stopped mid-run with 2 partitions, resumed asking for 1: the run goes on over its
    parts (in-process over the main file alone it would lose what the parts hold)."""
    first = replay(SAMPLE, tmp_path / "whole", 1)
    out = tmp_path / "stopped"
    out.mkdir()
    options = ReplayOptions(
        log=SAMPLE,
        db=out / "store.db",
        ledger=out / "ledger.jsonl",
        report=out / "report.json",
        partitions=2,
    )
    run_replay(options, pacer=StopAfter(300))
    again = run_replay(replace(options, partitions=1, resume=True))
    assert again == first
    assert orjson.loads((out / "report.json").read_bytes()) == first


def test_partition_count_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="between 1 and 8"):
        replay(SAMPLE, tmp_path, 9)


def test_a_crash_between_the_parts_commit_and_the_main_commit_resumes_exactly(
    tricky_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts commit before the main store; a crash in between leaves them one
    checkpoint ahead. The resumed run re-reads from the main store's checkpoint and each
    part skips what it already has: no send repeated, none lost."""
    replay(tricky_log, tmp_path / "whole", 1)
    commits = 0
    original = PartitionedEngine.checkpoint

    def crash_on_third(self: PartitionedEngine, cut: Cut) -> None:
        nonlocal commits
        commits += 1
        if commits == 3:
            self.commit_parts(cut)
            raise RuntimeError("crashed between the parts' commit and the main store's")
        original(self, cut)

    monkeypatch.setattr(PartitionedEngine, "checkpoint", crash_on_third)
    small = {"checkpoint_events": 500, "batch_events": 500}
    with pytest.raises(RuntimeError, match="crashed between"):
        replay(tricky_log, tmp_path / "crash", 2, **small)
    monkeypatch.undo()
    reader = ConsoleReader(tmp_path / "crash" / "store.db")
    main_line = reader.status().checkpoint_line
    reader.close()
    assert main_line is not None and main_line > 0
    with sqlite3.connect(tmp_path / "crash" / "store.p0.db") as part:
        (part_line,) = part.execute(
            "SELECT value FROM meta WHERE key = 'checkpoint_line'"
        ).fetchone()
    assert int(part_line) > main_line  # the part is one checkpoint ahead
    replay(tricky_log, tmp_path / "crash", 2, resume=True, **small)
    whole = (tmp_path / "whole" / "ledger.jsonl").read_bytes()
    assert (tmp_path / "crash" / "ledger.jsonl").read_bytes() == whole


def committed_line(db: Path) -> int:
    """The main store's last committed log line (0 before the first checkpoint)."""
    if not db.exists():
        return 0
    reader = ConsoleReader(db)
    try:
        return reader.status().checkpoint_line or 0
    finally:
        reader.close()


@pytest.mark.parametrize("when", ["starting", "running"])
def test_a_partition_that_dies_stops_the_replay_with_a_clear_error(
    tricky_log: Path, tmp_path: Path, when: str
) -> None:
    """A partition killed as it starts or mid-run: the replay fails naming it, stops the
    other partition, and --resume finishes to the same ledger as an uninterrupted run."""
    replay(tricky_log, tmp_path / "whole", 1)
    small = {"checkpoint_events": 500, "batch_events": 500}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            replay(tricky_log, tmp_path / "killed", 2, **small)
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    victim = None
    while runner.is_alive() and victim is None:
        runner.join(timeout=0.01)  # a thread of ours, not an actor: poll for its children
        children = [p for p in multiprocessing.active_children() if "partition-1" in p.name]
        if when == "running" and committed_line(tmp_path / "killed" / "store.db") < 1000:
            continue
        victim = children[0] if children else None
    assert victim is not None and victim.pid is not None, "no partition process appeared"
    os.kill(victim.pid, signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert failure and isinstance(failure[0], PartitionFailure), failure
    assert "partition 1 stopped unexpectedly" in str(failure[0])
    assert not multiprocessing.active_children()  # the other partition was stopped too
    replay(tricky_log, tmp_path / "killed", 2, resume=True, **small)
    whole = (tmp_path / "whole" / "ledger.jsonl").read_bytes()
    assert (tmp_path / "killed" / "ledger.jsonl").read_bytes() == whole


def test_a_console_opened_before_the_parts_were_named_attaches_them(tmp_path: Path) -> None:
    """A console may open the store between its creation and the first checkpoint, which
    names the parts; its next poll must see them."""
    replay(SAMPLE, tmp_path, 2)
    db = tmp_path / "store.db"
    with sqlite3.connect(db) as conn:
        (names,) = conn.execute("SELECT value FROM meta WHERE key = 'partitions'").fetchone()
        conn.execute("DELETE FROM meta WHERE key = 'partitions'")
    reader = ConsoleReader(db)
    try:
        assert reader.status().decisions == 0  # the main file alone holds no decisions
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('partitions', ?)", (names,))
        assert reader.status().decisions > 100
        with reader.read() as cut:
            assert sum(j.entered for j in cut.journeys()) > 0
    finally:
        reader.close()


class StopAfter(Pacer):
    """A console's pacer whose operator quits after `steps` steps of simulated time."""

    def __init__(self, steps: int) -> None:
        super().__init__(None)
        self.steps = steps

    def wait_for(self, sim: datetime) -> bool:
        self.steps -= 1
        return self.steps > 0


@pytest.mark.parametrize("partitions", [1, 2])
@pytest.mark.parametrize("steps", [1, 300, 1200])
def test_a_replay_quit_from_the_console_resumes_exactly(
    tmp_path: Path, partitions: int, steps: int
) -> None:
    """Quitting the console mid-replay leaves a batch read but not applied; the stop's
    checkpoint claims only what was applied, so --resume ends where a whole run ends
    (steps: at the first batch, mid-log, in the timers after the last event)."""
    whole = replay(SAMPLE, tmp_path / "whole", 1)
    out = tmp_path / "quit"
    out.mkdir()
    options = ReplayOptions(
        log=SAMPLE,
        db=out / "store.db",
        ledger=out / "ledger.jsonl",
        report=out / "report.json",
        partitions=partitions,
    )
    run_replay(options, pacer=StopAfter(steps))
    assert ConsoleReader(out / "store.db").status().status == "stopped"
    resumed = run_replay(replace(options, resume=True))
    assert resumed == whole
    ledger = (out / "ledger.jsonl").read_bytes()
    assert ledger == (tmp_path / "whole" / "ledger.jsonl").read_bytes()
