"""`omniconsole explain`: the causal chain of a message, in words and as JSON.

A small log is replayed with two partitions (explain reads the parts as one store);
each test asks about one message a support agent would ask about: sent, deferred by
quiet hours, suppressed by a full cap, held out, skipped, never created.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.domain.assignment import HOLDOUT_JOURNEY, Assigner
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.engine.explain import explain
from omniconsole.engine.replay import ReplayOptions, run_replay

EXAMPLE = shipped_config_dir() / "examples" / "holdouts"
REACHABLE = {"email": "x@example.com", "phone": "+14155550100", "whatsapp_opt_in": True}


def identify(customer: str, at: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": customer, "timestamp": at, "traits": traits}


def track(customer: str, at: str, event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": customer, "timestamp": at, "event": event,
            "properties": props}  # fmt: skip


def customer_in(prefix: str, arm: str) -> str:
    """The first `<prefix>-N` whose onboarding arm in the example config is `arm`."""
    config = load_config(EXAMPLE)
    onboarding = next(j for j in config.journeys if j.name == "onboarding")
    assigner = Assigner(config)
    return next(
        f"{prefix}-{n}"
        for n in range(1000)
        if assigner.arm_name(f"{prefix}-{n}", onboarding) == arm
    )


HAL = customer_in("hal", HOLDOUT_JOURNEY)
ANA = customer_in("ana", "base")  # the journey as written: nudge_day3 72 h after entry
CAT = customer_in("cat", "base")

LOG = [
    identify(ANA, "2026-03-02T12:00:00Z", timezone="Asia/Tokyo", **REACHABLE),
    identify("ben", "2026-03-02T12:00:01Z", email="ben@example.com"),
    identify(CAT, "2026-03-02T12:00:02Z", email="cat@example.com"),
    identify("dan", "2026-03-02T12:00:03Z", email="dan@example.com", push_token="tok"),
    identify(HAL, "2026-03-02T12:00:04Z", email="hal@example.com"),
    track(ANA, "2026-03-02T13:00:00Z", "Signed Up"),  # 22:00 in Tokyo
    track("ben", "2026-03-02T13:00:01Z", "Price Dropped", sku="a"),
    track(CAT, "2026-03-02T13:00:02Z", "Signed Up"),
    track("dan", "2026-03-02T13:00:03Z", "Product Viewed", sku="b"),
    track(HAL, "2026-03-02T13:00:04Z", "Signed Up"),
    track("ben", "2026-03-02T13:10:00Z", "Price Dropped", sku="b"),
    track("ben", "2026-03-02T13:20:00Z", "Price Dropped", sku="c"),
    track("dan", "2026-03-02T18:00:00Z", "Order Completed", order_id="o-1"),
    track(CAT, "2026-03-03T09:00:00Z", "Activated"),
    track(CAT, "2026-03-04T09:00:00Z", "Signed Up"),
]


def write_log(path: Path) -> Path:
    for n, event in enumerate(LOG):
        event["messageId"] = f"m-{n}"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in LOG))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("explain")
    db = directory / "s.db"
    run_replay(
        ReplayOptions(write_log(directory / "log.jsonl"), db, directory / "l.jsonl",
                      directory / "r.json", config_dir=EXAMPLE, partitions=2)
    )  # fmt: skip
    assert (directory / "s.p1.db").exists(), "the store is partitioned"
    return db


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniconsole", "explain", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_sent_message_names_the_event_that_created_it_and_the_channel_chosen(
    store: Path,
) -> None:
    data = explain(store, "dan:order_confirmation:1:receipt")
    assert data["verified"]
    [decision] = data["decisions"]
    assert "Order Completed at 2026-03-02T18:00:00Z (m-12, log line 13)" in decision["trigger"]
    assert decision["channels"][0] == {"channel": "email", "usable": True, "why": "usable"}
    assert decision["quiet_hours"] == "transactional: quiet hours do not apply"
    assert data["final"]["outcome"] == "sent" and data["final"]["channel"] == "email"


def test_a_deferred_message_shows_quiet_hours_in_local_time_and_its_re_decision(
    store: Path,
) -> None:
    done = cli("--db", store, f"{ANA}:onboarding:1:nudge_day3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "came due 72h after entry" in out
    assert "it was 22:00 (Thu) in Asia/Tokyo: inside quiet hours 21:00–08:00" in out
    assert "⇒ deferred (quiet_hours), to be decided again at 2026-03-05T23:00:00Z" in out
    assert "Decision 2 at 2026-03-05T23:00:00Z — decided again" in out
    assert "it was 08:00 (Fri) in Asia/Tokyo: outside quiet hours" in out
    assert "Final outcome: sent on whatsapp at 2026-03-05T23:00:00Z" in out
    assert out.rstrip().endswith("ledger lines as the store.")


def test_a_suppressed_message_lists_the_sends_that_filled_the_cap(store: Path) -> None:
    data = explain(store, "ben:price_drop:3:alert")
    [decision] = data["decisions"]
    [day, week] = decision["caps"]
    assert (day["cap"], day["full"], week["full"]) == ("cap:all:24h", True, False)
    assert [s["message_id"] for s in day["counted"]] == [
        "ben:price_drop:1:alert",
        "ben:price_drop:2:alert",
    ]
    assert [s["at"] for s in day["counted"]] == ["2026-03-02T13:00:01Z", "2026-03-02T13:10:00Z"]
    assert (decision["outcome"], decision["reason"]) == ("suppressed", "cap:all:24h")


def test_a_held_out_message_says_the_customer_is_in_the_control_group(store: Path) -> None:
    done = cli("--db", store, f"{HAL}:onboarding:1:welcome")
    assert done.returncode == 0, done.stderr
    assert "held out: in the journey's control group (nothing is sent)" in done.stdout
    assert "⇒ held_out (holdout:journey): would have been sent on email" in done.stdout
    assert "Final outcome: held_out on email (holdout:journey)" in done.stdout


def test_a_step_skipped_since_entry_says_which_event_skipped_it(store: Path) -> None:
    data = explain(store, "dan:product_recommendation:1:recommend")
    assert data["decisions"] == []
    why = data["final"]["why"]
    assert why.startswith("skipped: unless_since_entry Order Completed")
    assert "Order Completed at 2026-03-02T18:00:00Z (m-12, log line 13)" in why


def test_a_step_after_the_goal_was_reached_was_never_created(store: Path) -> None:
    data = explain(store, f"{CAT}:onboarding:1:nudge_day3")
    assert data["final"]["outcome"] == "never created"
    assert (
        "the goal was reached: converted at 2026-03-03T09:00:00Z by Activated"
        in data["final"]["why"]
    )


def test_an_instance_never_entered_says_the_entry_rule_refused_it(store: Path) -> None:
    data = explain(store, f"{CAT}:onboarding:2:welcome")
    why = data["final"]["why"]
    assert why.startswith("instance #2 of onboarding never existed")
    assert "Signed Up at 2026-03-04T09:00:00Z (m-14, log line 15) started nothing" in why
    assert "entered once per customer" in why


def test_a_customer_lists_each_instance_each_step_and_the_refused_entry(store: Path) -> None:
    data = explain(store, CAT, journey="onboarding")
    [instance] = data["instances"]
    assert instance["status"] == "converted"
    steps = {name: step["outcome"] for name, step in instance["steps"].items()}
    assert steps == {
        "welcome": "sent",
        "first_login": "never created",
        "nudge_day3": "never created",
        "nudge_day7": "never created",
    }
    assert (
        "no Logged In event while the instance was live" in instance["steps"]["first_login"]["why"]
    )
    [refused] = data["refused_entries"]
    assert refused["at"] == "2026-03-04T09:00:00Z"


def test_json_output_is_the_same_chain(store: Path) -> None:
    done = cli("--db", store, "ben:price_drop:3:alert", "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == orjson.loads(
        orjson.dumps(explain(store, "ben:price_drop:3:alert"))
    )


def test_an_unknown_target_is_one_line_and_exit_2(store: Path) -> None:
    done = cli("--db", store, "nobody")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"omniconsole: error: no customer and no message 'nobody' in {store}"
    )


def test_a_store_written_under_another_policy_is_not_explained(store: Path, tmp_path: Path) -> None:
    # the stored policy says 3 a day: ben's third alert would have gone out
    copy = tmp_path / "s.db"
    for part in store.parent.glob("s*.db"):
        copy.with_name(part.name).write_bytes(part.read_bytes())
    conn = sqlite3.connect(copy)
    policy = orjson.loads(conn.execute("SELECT value FROM meta WHERE key = 'policy'").fetchone()[0])
    policy["cap"][0]["limit"] = 3
    conn.execute("UPDATE meta SET value = ? WHERE key = 'policy'", (orjson.dumps(policy).decode(),))
    conn.commit()
    conn.close()
    done = cli("--db", copy, "ben:price_drop:3:alert")
    assert done.returncode == 1
    assert "Not explained: re-running the customer's events does not give the ledger" in done.stdout
    assert "suppressed" in done.stdout and "all-channel cap full" in done.stdout
