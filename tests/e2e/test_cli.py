"""The command line as scripts and operators use it: clear errors, no tracebacks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"


def omniconsole(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniconsole", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def outputs(tmp: Path) -> list[str | Path]:
    return ["--db", tmp / "s.db", "--ledger", tmp / "l.jsonl", "--report", tmp / "r.json"]


def test_sample_replays_to_a_full_report(tmp_path: Path) -> None:
    done = omniconsole("replay", SAMPLE, *outputs(tmp_path), "--rejects", tmp_path / "rej.jsonl",
                       "--table")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    events = report["events"]
    assert events["read"] == events["applied"] + events["rejected"] + events["duplicates"]
    assert events["rejected"] > 0 and events["duplicates"] > 0
    rejects = (tmp_path / "rej.jsonl").read_bytes().splitlines()
    assert len(rejects) == events["rejected"]
    assert all({"line", "reason", "raw"} <= orjson.loads(r).keys() for r in rejects)
    assert set(report["journeys"]) == {
        "onboarding", "order_confirmation", "fraud_alert", "product_recommendation", "price_drop"
    }  # fmt: skip
    assert report["journeys"]["onboarding"]["converted"] > 0
    assert set(report["channels"]) == {"email", "sms", "whatsapp", "rcs", "push", "in_app"}
    sent = sum(c["sent"] for c in report["channels"].values())
    ledger = [orjson.loads(x) for x in (tmp_path / "l.jsonl").read_bytes().splitlines()]
    assert sent == sum(1 for line in ledger if line["outcome"] == "sent")
    assert report["handoffs"] == sum(1 for x in ledger if x["handoff_from"] is not None)
    assert "onboarding" in done.stdout and "suppressed by reason" in done.stdout


def test_missing_log_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = omniconsole("replay", tmp_path / "nope.jsonl", *outputs(tmp_path))
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"omniconsole: error: log file not found: {tmp_path / 'nope.jsonl'}"
    )
    assert "Traceback" not in done.stderr


def test_unwritable_output_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = omniconsole(
        "replay", SAMPLE, "--db", tmp_path / "s.db", "--ledger", tmp_path / "missing" / "l.jsonl",
        "--report", tmp_path / "r.json",
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot write" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.json").exists()


def test_config_mistake_names_file_key_and_allowed_values(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    journey = config / "journeys" / "price_drop.toml"
    journey.write_text(journey.read_text().replace('"push", "whatsapp"', '"pager", "whatsapp"'))
    done = omniconsole("replay", SAMPLE, "--config", config, *outputs(tmp_path))
    assert done.returncode == 2
    message = done.stderr.strip()
    assert message.startswith("omniconsole: error: price_drop.toml: key 'step[0].channels'")
    assert "'pager'" in message and "allowed: email, in_app, push, rcs, sms, whatsapp" in message


def test_generate_is_seeded(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = omniconsole("generate", "--customers", "20", "--days", "3", "--seed", "5",
                           "--out", tmp_path / f"{name}.jsonl")  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert len((tmp_path / "a.jsonl").read_bytes().splitlines()) > 20


def test_inbox_lists_in_app_messages(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"type":"identify","userId":"u-1","timestamp":"2026-02-02T09:00:00Z","traits":{}}\n'
        '{"type":"track","userId":"u-1","event":"Signed Up","timestamp":"2026-02-02T09:00:01Z"}\n'
    )
    assert omniconsole("replay", log, *outputs(tmp_path)).returncode == 0
    done = omniconsole("inbox", "u-1", "--db", tmp_path / "s.db")
    assert done.returncode == 0
    assert "onboarding.welcome" in done.stdout  # no email address: welcome goes in-app
    assert "no in-app messages" in omniconsole("inbox", "u-2", "--db", tmp_path / "s.db").stdout


@pytest.mark.parametrize("command", [["console", "--db"], ["inbox", "x", "--db"]])
def test_store_commands_without_a_value_show_usage(command: list[str]) -> None:
    done = omniconsole(*command)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_generate_to_stdout_honours_events_per_customer(tmp_path: Path) -> None:
    def lines(per_customer: str) -> int:
        done = omniconsole("generate", "--customers", "50", "--days", "7", "--seed", "3",
                           "--events-per-customer", per_customer)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return len(done.stdout.splitlines())

    few, many = lines("4"), lines("20")
    assert many > 3 * few


def test_generate_with_the_decision_heavy_mix_is_mostly_price_drops_and_views() -> None:
    done = omniconsole("generate", "--customers", "200", "--seed", "3", "--mix", "decision-heavy")
    assert done.returncode == 0, done.stderr
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    drops_and_views = [e for e in events if e.get("event") in ("Price Dropped", "Product Viewed")]
    assert len(drops_and_views) > 0.3 * len(events)
