"""The benchmark's reference loop writes the engine's ledger, byte for byte.

`benchmarks/reference_loop.py` is the yardstick of `make bench` (issue "Per-core speed"):
a plain program implementing the same rules. If it drifted from the engine, the ratios
would compare different work, so these replays pin it: the reference and
`omniconsole replay --partitions 1` on the same logs, the same bytes.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from omniconsole.domain.generator import write_log

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "benchmarks" / "reference_loop.py"
SAMPLE = REPO / "examples" / "sample.jsonl"
STOP_KEYWORDS = Path(__file__).resolve().parent / "scenarios" / "stop_keywords.jsonl"
TIMEOUT = 120


def run(*args: str | Path) -> None:
    done = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr


def engine_ledger(log: Path, out: Path) -> bytes:
    out.mkdir(parents=True, exist_ok=True)
    run("-m", "omniconsole", "replay", log, "--db", out / "e.db", "--ledger", out / "e.jsonl",
        "--report", out / "e.json", "--partitions", "1")  # fmt: skip
    return (out / "e.jsonl").read_bytes()


def reference_ledger(log: Path, out: Path, *flags: str) -> bytes:
    out.mkdir(parents=True, exist_ok=True)
    run(REFERENCE, log, "--ledger", out / "r.jsonl", *flags)
    return (out / "r.jsonl").read_bytes()


@pytest.fixture(scope="module")
def decision_heavy_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("decision-heavy") / "log.jsonl"
    write_log(log, 800, 14, 4, datetime(2026, 3, 2, tzinfo=UTC), mix="decision-heavy")
    return log


def test_on_the_sample_the_reference_writes_the_engines_ledger(tmp_path: Path) -> None:
    engine = engine_ledger(SAMPLE, tmp_path)
    assert engine  # the comparison is not between two empty files
    assert reference_ledger(SAMPLE, tmp_path) == engine


def test_on_a_decision_heavy_log_the_reference_writes_the_engines_ledger(
    decision_heavy_log: Path, tmp_path: Path
) -> None:
    engine = engine_ledger(decision_heavy_log, tmp_path)
    assert reference_ledger(decision_heavy_log, tmp_path) == engine
    outcomes = Counter(orjson.loads(line)["outcome"] for line in engine.splitlines())
    assert outcomes["deferred"] > 0.1 * sum(outcomes.values())  # the workload defers a lot


def test_old_failures_and_steps_at_the_end_of_a_lifetime_give_the_engines_ledger(
    tmp_path: Path,
) -> None:
    # a failure reported a dozen sends later, and a Logged In at entry + 14 d exactly:
    # the two places the engine once departed from the SPEC (and the reference)
    ana = {"email": "ana@example.com", "phone": "+14155550101", "timezone": "UTC"}
    lines = [
        {"type": "identify", "userId": "c-1", "timestamp": "2026-03-02T10:00:00Z", "traits": ana},
        {"type": "track", "userId": "c-2", "event": "Signed Up", "timestamp": "2026-03-02T10:00:00Z"},
    ]  # fmt: skip
    lines += [
        {"type": "track", "userId": "c-1", "event": "Order Completed",
         "timestamp": f"2026-03-02T{11 + i}:00:00Z"}
        for i in range(12)
    ]  # fmt: skip
    lines += [
        {"type": "track", "userId": "c-1", "event": "Message Failed",
         "timestamp": "2026-03-03T10:00:00Z",
         "properties": {"channel": "email", "message_id": "c-1:order_confirmation:1:receipt"}},
        {"type": "track", "userId": "c-2", "event": "Logged In", "timestamp": "2026-03-16T10:00:00Z"},
    ]  # fmt: skip
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    engine = engine_ledger(log, tmp_path)
    assert b"receipt:fallback" in engine
    assert b"first_login" not in engine
    assert reference_ledger(log, tmp_path) == engine


def test_stop_keywords_read_as_consent_only_give_the_engines_ledger(tmp_path: Path) -> None:
    """SPEC §5 as amended 2026-11-30, which the engine and the reference both follow."""
    engine = engine_ledger(STOP_KEYWORDS, tmp_path)
    assert reference_ledger(STOP_KEYWORDS, tmp_path) == engine


def test_stop_keywords_read_as_engagement_differ_from_the_engine(tmp_path: Path) -> None:
    """The reference's old reading, kept behind a flag, is no longer the engine's."""
    engine = engine_ledger(STOP_KEYWORDS, tmp_path)
    assert reference_ledger(STOP_KEYWORDS, tmp_path, "--keyword-is-engagement") != engine
