"""`omniconsole compare`: one log, two configs, replayed at once, the differences shown.

The what-if of the issue: the shipped policy against one whose all-channel 24-hour cap
is 3 instead of 2. Both replays are real runs; their numbers must agree with plain
replays of the same log and config.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.domain.config import shipped_config_dir
from omniconsole.engine.compare import CompareOptions, compare
from omniconsole.engine.replay import ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"


@pytest.fixture(scope="module")
def cap3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config with an all-channel limit of 3 per 24 h."""
    target = tmp_path_factory.mktemp("cap3") / "config"
    shutil.copytree(shipped_config_dir(), target, ignore=shutil.ignore_patterns("examples"))
    policy = target / "policy.toml"
    text = policy.read_text()
    old = 'scope = "all"\nwindow = "24h"\nlimit = 2\n'
    assert text.count(old) == 1
    policy.write_text(text.replace(old, 'scope = "all"\nwindow = "24h"\nlimit = 3\n'))
    return target


@pytest.fixture(scope="module")
def result(cap3: Path) -> dict[str, Any]:
    return compare(CompareOptions(SAMPLE, (None, cap3), top=3))


def count(result: dict[str, Any], section: str, side: str, **match: str) -> int:
    return sum(
        row[side]
        for row in result[section]
        if all(row[key] == value for key, value in match.items())
    )


def test_a_looser_daily_cap_suppresses_fewer_messages_for_that_cap(result: dict[str, Any]) -> None:
    a = count(result, "reasons", "a", outcome="suppressed", reason="cap:all:24h")
    b = count(result, "reasons", "b", outcome="suppressed", reason="cap:all:24h")
    assert b < a
    capped = result["customers_capped"]["cap:all:24h"]
    assert capped["b"] < capped["a"]
    sent_a = count(result, "decisions", "a", outcome="sent")
    sent_b = count(result, "decisions", "b", outcome="sent")
    assert sent_b >= sent_a


def test_side_a_is_exactly_what_a_plain_replay_of_the_shipped_config_reports(
    result: dict[str, Any], tmp_path: Path
) -> None:
    report = run_replay(
        ReplayOptions(SAMPLE, tmp_path / "s.db", tmp_path / "l.jsonl", tmp_path / "r.json")
    )
    for channel, outcomes in report["channels"].items():
        for outcome, n in outcomes.items():
            assert count(result, "decisions", "a", channel=channel, outcome=outcome) == n
    assert result["handoffs"]["a"] == report["handoffs"]
    assert result["journeys"]["onboarding"]["a"] == report["journeys"]["onboarding"]
    sent = sum(c["sent"] for c in report["channels"].values())
    weekly = result["messages_per_customer_week"]["a"]["customer_weeks"]
    assert sum(int(k.rstrip("+")) * n for k, n in weekly.items()) <= sent


def test_the_customers_that_differ_most_come_with_their_lines_from_both_runs(
    result: dict[str, Any],
) -> None:
    most = result["most_different"]
    assert 0 < len(most) <= 3 and result["customers_differing"] >= len(most)
    assert [m["difference"] for m in most] == sorted((m["difference"] for m in most), reverse=True)
    for entry in most:
        key = ("at", "message_id", "outcome", "channel", "reason")
        a = {tuple(line[k] for k in key) for line in entry["a"]}
        b = {tuple(line[k] for k in key) for line in entry["b"]}
        assert a != b
        assert all(line["customer"] == entry["customer"] for line in entry["a"] + entry["b"])


def test_a_config_compared_with_itself_differs_nowhere() -> None:
    same = compare(CompareOptions(SAMPLE, (None, shipped_config_dir()), top=3))
    assert same["customers_differing"] == 0 and same["most_different"] == []
    assert all(row["a"] == row["b"] for row in same["decisions"] + same["reasons"])


def test_the_command_prints_the_tables_and_the_lines_side_by_side(cap3: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "compare", str(SAMPLE), "--config",
         str(shipped_config_dir()), "--config", str(cap3), "--top", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for title in (
        "Decisions per channel and outcome",
        "Deferrals, suppressions and holdouts per reason",
        "Customers who hit each cap",
        "Messages per customer per week",
        "Handoffs",
        "Conversions per journey",
        "The 2 that differ most (A left, B right):",
    ):
        assert title in out
    differing = [line for line in out.splitlines() if line.strip().startswith("≠ ")]
    assert differing, "a differing message is marked"


def test_the_command_writes_json_and_refuses_one_config(cap3: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "compare", str(SAMPLE), "--config",
         str(shipped_config_dir()), "--config", str(cap3), "--json",
         "--until", "2026-03-05T00:00:00Z"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = orjson.loads(done.stdout)
    assert set(data["configs"]) == {"a", "b"}
    assert all(line["at"] <= "2026-03-05T00:00:00Z"
               for m in data["most_different"] for line in m["a"] + m["b"])  # fmt: skip
    one = subprocess.run(
        [sys.executable, "-m", "omniconsole", "compare", str(SAMPLE), "--config", str(cap3)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert one.returncode == 2
    assert one.stderr.strip() == "omniconsole: error: compare needs --config twice (A and B), got 1"
