"""`benchmarks/store_floor.py` says what SQLite alone costs a one-partition replay.

The benchmark behind the "store's floor" figures of docs/benchmarks.md: the store
writer's statements, run again through plain sqlite3, must rebuild a store with as many
rows in every table as the engine's (else the floor would leave work out), and come out
timed by table beside the reference loop's whole run, with the bound that follows.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLOOR = REPO / "benchmarks" / "store_floor.py"


def run_floor(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(FLOOR), *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def events_of(out: str) -> int:
    found = re.search(r"^log: ([\d,]+) events$", out, re.M)
    assert found is not None, out
    return int(found.group(1).replace(",", ""))


def test_the_store_floor_of_a_small_replay_is_reported() -> None:
    out = run_floor("--customers", "3000")
    # replayed statement for statement, the store came out as the engine wrote it
    assert re.search(r"^rows: as the engine's store, in all \d+ tables$", out, re.M), out
    floor = re.search(r"^SQLite alone .*?([\d,]+) statements.*\): ([\d.]+) CPU s", out, re.M)
    assert floor is not None, out
    assert int(floor.group(1).replace(",", "")) > 10
    sqlite_cpu = float(floor.group(2))
    assert sqlite_cpu > 0
    # the tables the engine writes as it replays, each with its share
    for table in ("ledger", "events", "profiles"):
        assert re.search(rf"^  {table}\b.*: [\d.]+ s \(\d+%\)$", out, re.M), out
    reference = re.search(r"^reference loop, the whole replay: ([\d.]+) CPU s", out, re.M)
    assert reference is not None, out
    bound = re.search(r"^bound at 1 partition: ([\d.]+)x the reference", out, re.M)
    assert bound is not None, out
    # the reference's CPU over SQLite's, as far as two printed decimals tell
    ref, half = float(reference.group(1)), 0.005
    low, high = (ref - half) / (sqlite_cpu + half), (ref + half) / (sqlite_cpu - half)
    assert low - half <= float(bound.group(1)) <= high + half, out


def test_the_partitions_of_a_log_share_its_lines_between_them() -> None:
    """Each of 2 partitions is measured on its own customers' lines: between them, the
    whole log, each line once."""
    whole = events_of(run_floor("--customers", "2000"))
    halves = [run_floor("--customers", "2000", "--partition", f"{k}/2") for k in (0, 1)]
    for k, out in enumerate(halves):
        assert f"partition {k} of 2: the log's lines of its customers alone" in out
        assert re.search(r"^bound at 1 partition: [\d.]+x", out, re.M), out
    counts = [events_of(out) for out in halves]
    assert all(0 < n < whole for n in counts)
    assert sum(counts) == whole
