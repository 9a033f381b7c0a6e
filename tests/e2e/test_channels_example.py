"""The bundled sample replayed with `config/examples/channels`, which turns every channel
rule on: the ledger shows affinity-chosen channels, switched and best-hour sends,
digests and topic opt-outs, each explained in its line and in the store's explanation
the console shows; the same bytes with one partition or two. And the shipped config's
ledger does not move when history is recorded but no rule uses it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"
EXAMPLE = REPO / "config" / "examples" / "channels"
SHIPPED = REPO / "config"
SPEC_KEYS = ["at", "customer", "journey", "step", "message_id", "channel", "category",
             "outcome", "reason", "handoff_from"]  # fmt: skip


def replay(tmp: Path, name: str, config: Path, partitions: int = 1) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "replay", str(SAMPLE), "--config", str(config),
         "--db", str(tmp / f"{name}.db"), "--ledger", str(tmp / f"{name}.jsonl"),
         "--report", str(tmp / f"{name}.json"), "--partitions", str(partitions)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return tmp / name


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replay(tmp_path_factory.mktemp("channels"), "example", EXAMPLE)


def ledger(run: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in run.with_suffix(".jsonl").read_bytes().splitlines()]


def explanations(run: Path) -> dict[tuple[str, str, str], str]:
    """(message id, outcome, at) -> the explanation the console shows for that line."""
    conn = sqlite3.connect(f"file:{run.with_suffix('.db')}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT message_id, outcome, at, explanation FROM ledger").fetchall()
    finally:
        conn.close()
    return {(m, o, a): e for m, o, a, e in rows}


def explained(run: Path, line: dict[str, Any]) -> str:
    return explanations(run)[(line["message_id"], line["outcome"], line["at"])]


def test_affinity_chooses_channels_and_names_the_scores(run: Path) -> None:
    chosen = [
        ln for ln in ledger(run)
        if ln["outcome"] == "sent" and "affinity" in ln and "switched_from" not in ln
        and "preferred" not in ln and len(ln["affinity"]) > 1
        and ln["channel"] != next(iter(ln["affinity"]))
    ]  # fmt: skip
    assert chosen, "no send where affinity chose other than the step's first usable channel"
    for line in chosen:
        scores = line["affinity"]
        assert scores[line["channel"]] == max(scores.values())
    assert "affinity (engaged/sent) ranks the usable channels" in explained(run, chosen[0])
    stated = [ln for ln in ledger(run) if "preferred" in ln]
    assert stated and all(ln["channel"] == ln["preferred"] for ln in stated)
    assert "preferred channel" in explained(run, stated[0])


def test_a_block_switches_to_a_channel_that_can_go_now(run: Path) -> None:
    switched = [ln for ln in ledger(run) if ln["outcome"] == "sent" and "switched_from" in ln]
    reasons = {ln["switched_from"]["reason"] for ln in switched}
    assert "quiet_hours" in reasons
    quiet = next(ln for ln in switched if ln["switched_from"]["reason"] == "quiet_hours")
    assert quiet["channel"] != quiet["switched_from"]["channel"]
    assert f"switched from {quiet['switched_from']['channel']} (quiet_hours)" in explained(
        run, quiet
    )


def test_best_hour_sends_go_out_at_the_hour_they_name(run: Path) -> None:
    lines = ledger(run)
    deferred = [ln for ln in lines if ln["reason"] == "send_time:best_hour"]
    assert deferred
    zones = {}
    for raw in SAMPLE.read_bytes().splitlines():
        try:
            event = orjson.loads(raw)
            zones[event["userId"]] = event["traits"]["timezone"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
    checked = 0
    for line in deferred:
        final = [ln for ln in lines if ln["message_id"] == line["message_id"]
                 and ln["outcome"] == "sent"]  # fmt: skip
        if not final or "late" in final[0]["send_at"]:
            continue
        at = datetime.fromisoformat(final[0]["at"]).astimezone(ZoneInfo(zones[line["customer"]]))
        assert f"{at.hour:02d}:00" == final[0]["send_at"]["hour"]
        checked += 1
    assert checked
    assert "deferred to" in explained(run, deferred[0])
    assert {ln["send_at"]["basis"] for ln in deferred} == {"customer", "population"}


def test_digests_collapse_triggers_and_every_trigger_points_at_its_message(run: Path) -> None:
    lines = ledger(run)
    joined = [ln for ln in lines if ln["outcome"] == "digested"]
    assert joined
    finals = {ln["message_id"]: ln for ln in lines if ln["outcome"] in ("sent", "suppressed")}
    for line in joined:
        digest = finals[line["joined"]]
        assert line["message_id"] in digest["digest"]["joined"]
        assert digest["digest"]["items"] == 1 + len(digest["digest"]["joined"])
    assert "joined the open 6h digest of" in explained(run, joined[0])
    report = orjson.loads(run.with_suffix(".json").read_bytes())
    assert report["digested"] == len(joined)


def test_topic_opt_outs_are_consent_withdrawn_and_say_so(run: Path) -> None:
    lines = ledger(run)
    off = [ln for ln in lines if ln["reason"] == "consent:topic:recommendations"]
    assert off
    assert all(ln["topic_off"]["channels"] == ["whatsapp"] for ln in off)
    assert "topic recommendations is off on whatsapp" in explained(run, off[0])
    assert not any(
        ln["outcome"] == "sent" and ln["journey"] == "product_recommendation"
        and ln["channel"] == "whatsapp" for ln in lines
    )  # fmt: skip


def test_the_example_ledger_is_the_same_with_two_partitions(run: Path, tmp_path: Path) -> None:
    two = replay(tmp_path, "two", EXAMPLE, partitions=2)
    assert two.with_suffix(".jsonl").read_bytes() == run.with_suffix(".jsonl").read_bytes()
    assert two.with_suffix(".json").read_bytes() == run.with_suffix(".json").read_bytes()


def test_the_shipped_ledger_is_unchanged_by_history_no_rule_uses(tmp_path: Path) -> None:
    neutral = tmp_path / "neutral"
    shutil.copytree(SHIPPED, neutral, ignore=shutil.ignore_patterns("examples"))
    with (neutral / "policy.toml").open("a") as policy:
        policy.write('\n[engagement]\npopulation = { email = 0.2 }\n\n[[topic]]\nname = "news"\n')
    shipped = replay(tmp_path, "shipped", SHIPPED)
    recording = replay(tmp_path, "recording", neutral)
    assert (
        recording.with_suffix(".jsonl").read_bytes() == shipped.with_suffix(".jsonl").read_bytes()
    )
    assert recording.with_suffix(".json").read_bytes() == shipped.with_suffix(".json").read_bytes()
    assert all(list(ln) == SPEC_KEYS for ln in ledger(shipped))
