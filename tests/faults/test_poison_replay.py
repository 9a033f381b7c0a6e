"""No input stops a replay: each class of poison is a rejects line naming its field, or
quarantines one customer; every other customer's ledger is as if it were not there."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.config import shipped_config_dir
from omniconsole.engine.replay import ReplayOptions, run_replay

pytestmark = pytest.mark.faults

GOOD = [
    {"type": "identify", "userId": "good-1", "timestamp": "2026-03-02T09:00:00Z",
     "traits": {"email": "good@example.com", "phone": "+14155550199"}, "messageId": "g-1"},
    {"type": "track", "userId": "good-1", "event": "Order Completed",
     "timestamp": "2026-03-02T09:00:01Z", "properties": {"order_id": "A1"}, "messageId": "g-2"},
    {"type": "track", "userId": "good-1", "event": "Signed Up",
     "timestamp": "2026-03-02T09:00:02Z", "messageId": "g-3"},
]  # fmt: skip


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


#: (name, raw line, the field its rejects line must name)
POISON: list[tuple[str, bytes, str]] = [
    ("traits nested 300 deep",
     b'{"type":"identify","userId":"p-1","timestamp":"2026-03-02T09:00:00Z","traits":'
     + deep(300).encode() + b"}", "traits"),
    ("properties nested 40 deep",
     b'{"type":"track","userId":"p-1","event":"X","timestamp":"2026-03-02T09:00:00Z",'
     b'"properties":' + deep(40).encode() + b"}", "properties"),
    ("NUL in userId", orjson.dumps({"type": "identify", "userId": "good-1\x00x",
     "timestamp": "2026-03-02T09:00:00Z", "traits": {"email": "evil@example.com"}}), "userId"),
    ("NUL in event name", orjson.dumps({"type": "track", "userId": "p-2", "event": "Signed\x00Up",
     "timestamp": "2026-03-02T09:00:00Z"}), "event"),
    ("NUL in messageId", orjson.dumps({"type": "track", "userId": "p-2", "event": "Signed Up",
     "timestamp": "2026-03-02T09:00:00Z", "messageId": "g-1\x00"}), "messageId"),
    ("NUL in a phone trait", orjson.dumps({"type": "identify", "userId": "p-3",
     "timestamp": "2026-03-02T09:00:00Z", "traits": {"phone": "+14155550199\x00"}}), "traits.phone"),
    ("NUL in a trait key", orjson.dumps({"type": "identify", "userId": "p-3",
     "timestamp": "2026-03-02T09:00:00Z", "traits": {"a\x00": 1}}), "traits"),
    ("newline in userId", orjson.dumps({"type": "identify", "userId": "p\nx",
     "timestamp": "2026-03-02T09:00:00Z"}), "userId"),
    ("userId of 10,000 characters", orjson.dumps({"type": "identify", "userId": "u" * 10_000,
     "timestamp": "2026-03-02T09:00:00Z"}), "userId"),
    ("timestamp before year 1 in UTC", orjson.dumps({"type": "identify", "userId": "p-4",
     "timestamp": "0001-01-01T00:00:00+01:00"}), "timestamp"),
    ("timestamp after year 9999 in UTC", orjson.dumps({"type": "identify", "userId": "p-4",
     "timestamp": "9999-12-31T23:59:59-01:00"}), "timestamp"),
    ("Signed Up a week before datetime's end", orjson.dumps({"type": "track", "userId": "p-4",
     "event": "Signed Up", "timestamp": "9999-12-30T00:00:00Z"}), "timestamp"),
    ("a million values", b'{"type":"identify","userId":"p-5","timestamp":"2026-03-02T09:00:00Z",'
     b'"traits":{"a":[' + b",".join([b"1"] * 20_000) + b"]}}", "traits"),
]  # fmt: skip


def replay(
    tmp: Path, lines: list[bytes], config: Path | None = None, partitions: int = 1
) -> dict[str, Any]:
    tmp.mkdir(exist_ok=True)
    log = tmp / "log.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    return run_replay(
        ReplayOptions(
            log=log,
            db=tmp / "store.db",
            ledger=tmp / "ledger.jsonl",
            report=tmp / "report.json",
            rejects=tmp / "rejects.jsonl",
            config_dir=config,
            partitions=partitions,
        )
    )


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_every_class_of_poison_is_a_rejects_line_and_the_others_go_on(tmp_path: Path) -> None:
    good = [orjson.dumps(x) for x in GOOD]
    clean = replay(tmp_path / "clean", good)
    poisoned = tmp_path / "poisoned"
    report = replay(poisoned, [good[0], *(raw for _, raw, _ in POISON), *good[1:]])

    rejects = jsonl(poisoned / "rejects.jsonl")
    assert [r["line"] for r in rejects] == list(range(2, 2 + len(POISON)))
    for (name, _, field), reject in zip(POISON, rejects, strict=True):
        assert f"'{field}'" in reject["reason"], (name, reject["reason"])
    assert report["events"]["rejected"] == len(POISON)
    assert report["events"]["applied"] == len(GOOD)
    # the poison changed nothing for anyone else: same decisions as without it
    assert (poisoned / "ledger.jsonl").read_bytes() == (
        tmp_path / "clean" / "ledger.jsonl"
    ).read_bytes()
    assert clean["channels"] == report["channels"]


def test_a_nul_cannot_take_over_another_customer_after_a_restart(tmp_path: Path) -> None:
    """The attack of the issue: `victim\\0x` with the attacker's address must not become
    `victim` in the store (SQLite text functions stop at NUL)."""
    lines = [
        orjson.dumps({"type": "identify", "userId": "victim", "timestamp": "2026-03-02T09:00:00Z",
                      "traits": {"email": "victim@example.com", "phone": "+14155550101"}}),
        orjson.dumps({"type": "identify", "userId": "victim\x00x", "timestamp": "2026-03-02T09:00:01Z",
                      "traits": {"email": "attacker@example.com", "phone": "+14155550666"}}),
    ]  # fmt: skip
    replay(tmp_path, lines)
    conn = sqlite3.connect(tmp_path / "store.db")
    try:
        rows = conn.execute("SELECT customer, email, phone FROM profiles").fetchall()
        events = conn.execute("SELECT customer, payload FROM events").fetchall()
    finally:
        conn.close()
    assert rows == [("victim", "victim@example.com", "+14155550101")]
    # every stored event is its customer's own: no id was cut short on the way in
    assert [(c, orjson.loads(p)["userId"]) for c, p in events] == [("victim", "victim")]


def test_a_rejected_line_with_a_nul_byte_is_kept_whole(tmp_path: Path) -> None:
    raw = b'{"type":"identify","userId":"a\x00b", not json'
    replay(tmp_path, [orjson.dumps(GOOD[0]), raw])
    [reject] = jsonl(tmp_path / "rejects.jsonl")
    assert reject["raw"] == raw.decode()


@pytest.mark.parametrize("zone", ["America", "Europe", "Etc", "Z" * 300, "../../etc/passwd"])
def test_a_time_zone_that_is_no_zone_is_utc_not_a_dead_governor(tmp_path: Path, zone: str) -> None:
    lines = [
        orjson.dumps({"type": "identify", "userId": "tz-1", "timestamp": "2026-03-02T09:00:00Z",
                      "traits": {"phone": "+14155550123", "timezone": zone}}),
        # lifecycle SMS: quiet hours are read in the customer's zone — here, UTC
        orjson.dumps({"type": "track", "userId": "tz-1", "event": "Signed Up",
                      "timestamp": "2026-03-02T09:00:01Z"}),
        *[orjson.dumps(x) for x in GOOD],
    ]  # fmt: skip
    report = replay(tmp_path, lines)
    ledger = jsonl(tmp_path / "ledger.jsonl")
    nudges = [x for x in ledger if x["customer"] == "tz-1" and x["step"] == "nudge_day3"]
    assert [(x["channel"], x["outcome"]) for x in nudges] == [("sms", "sent")]
    assert nudges[0]["at"] == "2026-03-05T09:00:01Z"  # 09:00 UTC is not quiet in UTC
    assert any(x["customer"] == "good-1" for x in ledger)
    assert report["events"]["rejected"] == 0


def overflowing_config(tmp: Path) -> Path:
    """The shipped config plus a journey whose step is due after datetime's end."""
    config = tmp / "config"
    shutil.copytree(shipped_config_dir(), config)
    (config / "journeys" / "far_future.toml").write_text(
        'name = "far_future"\ncategory = "lifecycle"\n[entry]\nevent = "Joined Club"\n'
        'rule = "every"\n[[step]]\nname = "remind"\nafter = "520000w"\nchannels = ["email"]\n'
    )
    return config


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_customer_that_fails_is_quarantined_and_the_replay_goes_on(
    tmp_path: Path, partitions: int
) -> None:
    config = overflowing_config(tmp_path)
    lines = [
        orjson.dumps({"type": "identify", "userId": "q-1", "timestamp": "2026-03-02T08:00:00Z",
                      "traits": {"email": "q@example.com"}}),
        orjson.dumps({"type": "track", "userId": "q-1", "event": "Joined Club",
                      "timestamp": "2026-03-02T08:00:01Z"}),
        orjson.dumps({"type": "track", "userId": "q-1", "event": "Order Completed",
                      "timestamp": "2026-03-02T10:00:00Z"}),
        *[orjson.dumps(x) for x in GOOD],
    ]  # fmt: skip
    out = tmp_path / "run"
    report = replay(out, lines, config, partitions)
    ledger = jsonl(out / "ledger.jsonl")
    assert {x["customer"] for x in ledger} == {"good-1"}
    assert report["events"]["applied"] == len(lines)
    rejects = jsonl(out / "rejects.jsonl")
    assert [r["line"] for r in rejects] == [2, 3]
    assert "quarantined" in rejects[0]["reason"] and "OverflowError" in rejects[0]["reason"]
    assert "is quarantined" in rejects[1]["reason"]
    reader = SqliteStore(out / "store.db").reader()
    try:
        [(customer, (since, reason))] = reader.quarantined().items()
    finally:
        reader.close()
    assert customer == "q-1" and reason.startswith("OverflowError")
    assert since == "2026-03-02T08:00:01Z"


def test_the_cli_replays_a_poisoned_log_with_exit_0_and_no_traceback(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join([*(raw for _, raw, _ in POISON), orjson.dumps(GOOD[0])]) + b"\n")
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "replay", str(log), "--db", str(tmp_path / "s.db"),
         "--ledger", str(tmp_path / "l.jsonl"), "--report", str(tmp_path / "r.json"), "--fresh"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
