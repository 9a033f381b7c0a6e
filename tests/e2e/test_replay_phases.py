"""`benchmarks/replay_phases.py` says where a one-partition replay's wall time went.

The benchmark behind the "checkpoints against the work between them" figures of
docs/benchmarks.md: a small generated log must come out with its checkpoints counted,
their share of the wall time, and the cores each phase used, by thread role.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PHASES = REPO / "benchmarks" / "replay_phases.py"


def test_the_phases_of_a_small_replay_are_reported() -> None:
    done = subprocess.run(
        [sys.executable, str(PHASES), "--customers", "3000", "--interval", "0.05"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    wall = float(re.search(r"^replay: ([\d.]+) s wall$", out, re.M).group(1))  # type: ignore[union-attr]
    assert wall > 0
    # the replay's last checkpoint at least ("done"), its time a share of the whole
    counted = re.search(r"^checkpoints: (\d+), ([\d.]+) s \((\d+)% of the wall time\)", out, re.M)
    assert counted is not None, out
    assert int(counted.group(1)) >= 1
    assert 0 < float(counted.group(2)) <= wall
    # the work between checkpoints, with the engine's threads named by what they do
    work = re.search(r"^between checkpoints: .* ([\d.]+) cores; (.*)$", out, re.M)
    assert work is not None, out
    assert "profile shard" in work.group(2)
    assert "SQLite" in work.group(2)
