"""A replay killed at any moment and restarted with --resume neither repeats nor loses a send."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from omniconsole.domain.generator import write_log


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    write_log(path, 1500, 14, 11, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=12)
    return path


def replay_cmd(log: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "omniconsole", "replay", str(log),
        "--db", str(out / "store.db"),
        "--ledger", str(out / "ledger.jsonl"),
        "--report", str(out / "report.json"),
        *extra,
    ]  # fmt: skip


def checkpoint_line(db: Path) -> int:
    """The last log line the store has committed, or 0 (read-only, like any console)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'checkpoint_line'").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def uninterrupted(log: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("whole")
    subprocess.run(replay_cmd(log, out), check=True, timeout=300)
    return (out / "ledger.jsonl").read_bytes()


def kill_after_checkpoints(cmd: list[str], db: Path, past_line: int) -> None:
    """Start the replay and SIGKILL it once its store has committed past `past_line`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and checkpoint_line(db) <= past_line:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.02)  # a subprocess, not an actor: poll its store
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the replay finished before it could be killed"


@pytest.mark.parametrize("partitions", ["1", "2"])
@pytest.mark.parametrize("past_line", [1, 6000])
def test_killed_replay_resumes_to_the_same_ledger(
    log: Path, uninterrupted: bytes, tmp_path: Path, past_line: int, partitions: str
) -> None:
    # Partitioned, the coordinator is killed; its partitions see the pipe close and stop
    # without committing, and the resumed run's partitions skip what they had committed.
    cmd = replay_cmd(log, tmp_path, "--checkpoint-every", "1000", "--partitions", partitions)
    kill_after_checkpoints(cmd, tmp_path / "store.db", past_line)
    committed = checkpoint_line(tmp_path / "store.db")
    assert committed > past_line
    subprocess.run([*cmd, "--resume"], check=True, timeout=300)
    resumed = (tmp_path / "ledger.jsonl").read_bytes()
    assert resumed == uninterrupted
    # and so: one final line per message, none repeated
    finals = [
        orjson.loads(line)["message_id"]
        for line in resumed.splitlines()
        if orjson.loads(line)["outcome"] != "deferred"
    ]
    assert len(finals) == len(set(finals))


@pytest.mark.parametrize("partitions", ["1", "2"])
def test_a_replay_keeping_few_profiles_in_memory_resumes_to_the_same_ledger(
    log: Path, uninterrupted: bytes, tmp_path: Path, partitions: str
) -> None:
    # 1,500 customers and room for 40: most changed profiles leave memory for a spill
    # file between checkpoints, and come back from there, or from the store after a
    # kill (which loses the spill file with the store's open transaction)
    cmd = replay_cmd(
        log, tmp_path, "--checkpoint-every", "1000", "--max-active", "40",
        "--partitions", partitions,
    )  # fmt: skip
    kill_after_checkpoints(cmd, tmp_path / "store.db", 6000)
    subprocess.run([*cmd, "--resume"], check=True, timeout=300)
    assert (tmp_path / "ledger.jsonl").read_bytes() == uninterrupted


def test_resuming_a_finished_replay_changes_nothing(
    log: Path, uninterrupted: bytes, tmp_path: Path
) -> None:
    cmd = replay_cmd(log, tmp_path)
    subprocess.run(cmd, check=True, timeout=300)
    report = (tmp_path / "report.json").read_bytes()
    subprocess.run([*cmd, "--resume"], check=True, timeout=300)
    assert (tmp_path / "ledger.jsonl").read_bytes() == uninterrupted
    assert (tmp_path / "report.json").read_bytes() == report
