"""Proving the outcome end to end: a log with a planted lift, replayed with control groups.

The generator plants a known lift (extra `Activated` for treated customers, chosen
with the engine's own assignment); the replay's report must measure it: an interval
that covers the planted effect and excludes zero. The shipped config stays as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from omniconsole.domain.assignment import HELD_OUT_ARMS, Assigner
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.generator import PlantedLift, write_log
from omniconsole.engine.replay import ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"
EXAMPLE = shipped_config_dir() / "examples" / "holdouts"
PLANTED = 0.08
START = datetime(2026, 3, 2, tzinfo=UTC)


def replay(log: Path, directory: Path, config: Path | None = None, tag: str = "run",
           partitions: int = 1) -> tuple[dict[str, Any], bytes]:  # fmt: skip
    report = run_replay(
        ReplayOptions(
            log=log,
            db=directory / f"{tag}.db",
            ledger=directory / f"{tag}.ledger.jsonl",
            report=directory / f"{tag}.report.json",
            config_dir=config,
            partitions=partitions,
        )
    )
    return report, (directory / f"{tag}.ledger.jsonl").read_bytes()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    """5,000 customers with a planted onboarding lift of 8 points, replayed with the example."""
    directory = tmp_path_factory.mktemp("planted")
    log = directory / "planted.jsonl"
    plant = PlantedLift(load_config(EXAMPLE), {"onboarding": PLANTED})
    write_log(log, 5000, 14, 11, START, events_per_customer=4, plant=plant)
    return replay(log, directory, EXAMPLE)


def test_the_replay_measures_the_planted_lift_within_its_interval(
    planted: tuple[dict[str, Any], bytes],
) -> None:
    report, _ = planted
    onboarding = report["outcomes"]["journeys"]["onboarding"]
    low, high = onboarding["lift"]["ci95"]
    assert low <= PLANTED <= high
    assert onboarding["lift"]["excludes_zero"]
    assert onboarding["control"]["entered"] > 400  # enough to mean something
    assert onboarding["treatment"]["rate"] > onboarding["control"]["rate"]


def test_each_variant_is_reported_against_the_journeys_control_group(
    planted: tuple[dict[str, Any], bytes],
) -> None:
    onboarding = planted[0]["outcomes"]["journeys"]["onboarding"]
    variants = onboarding["variants"]
    assert set(variants) == {"base", "b"}
    assert (
        sum(v["treatment"]["entered"] for v in variants.values())
        == onboarding["treatment"]["entered"]
    )
    for v in variants.values():
        assert v["control"] == {
            k: onboarding["control"][k] for k in ("entered", "converted", "rate")
        }
        low, high = v["lift"]["ci95"]
        assert low <= v["lift"]["absolute"] <= high
    assert planted[0]["outcomes"]["method"].startswith("Newcombe hybrid score interval")


def test_held_out_lines_are_counted_per_channel_and_never_sent(
    planted: tuple[dict[str, Any], bytes],
) -> None:
    report, ledger = planted
    lines = [orjson.loads(x) for x in ledger.splitlines()]
    held = [x for x in lines if x["outcome"] == "held_out"]
    assert {x["reason"] for x in held} == {"holdout:journey", "holdout:global"}
    assert sum(c["held_out"] for c in report["channels"].values()) == len(held)
    assert all(x["category"] != "transactional" for x in held)
    held_messages = {x["message_id"] for x in held}
    assert not any(x["outcome"] == "sent" and x["message_id"] in held_messages for x in lines)
    # the variant key is on onboarding's treated lines only
    assert {x["journey"] for x in lines if "variant" in x} == {"onboarding"}


def test_the_shipped_config_writes_no_held_out_no_variant_and_no_outcomes(tmp_path: Path) -> None:
    report, ledger = replay(SAMPLE, tmp_path)
    assert "outcomes" not in report
    assert all("held_out" not in c for c in report["channels"].values())
    assert b"held_out" not in ledger and b'"variant"' not in ledger


def test_control_groups_of_share_zero_change_no_byte_of_the_ledger(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), config, ignore=shutil.ignore_patterns("examples"))
    with (config / "policy.toml").open("a") as policy:
        policy.write("\n[global_control]\nshare = 0.0\n")
    with (config / "journeys" / "onboarding.toml").open("a") as journey:
        journey.write("\n[holdout]\nshare = 0\n")
    _, shipped = replay(SAMPLE, tmp_path, tag="shipped")
    _, zero = replay(SAMPLE, tmp_path, config, tag="zero")
    assert zero == shipped


def test_the_same_customers_are_held_out_with_one_partition_or_two(tmp_path: Path) -> None:
    _, one = replay(SAMPLE, tmp_path, EXAMPLE, tag="one")
    _, two = replay(SAMPLE, tmp_path, EXAMPLE, tag="two", partitions=2)
    assert one == two
    assert b'"held_out"' in one


class QuitAfter(Pacer):
    """An operator who quits the replay after `steps` steps of simulated time."""

    def __init__(self, steps: int) -> None:
        super().__init__(None)
        self.steps = steps

    def wait_for(self, sim: datetime) -> bool:
        self.steps -= 1
        return self.steps > 0


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_replay_stopped_and_resumed_holds_out_the_same_customers(
    tmp_path: Path, partitions: int
) -> None:
    report, straight = replay(SAMPLE, tmp_path, EXAMPLE, tag="straight")
    options = ReplayOptions(log=SAMPLE, db=tmp_path / "r.db", ledger=tmp_path / "r.jsonl",
                            report=tmp_path / "r.json", config_dir=EXAMPLE,
                            partitions=partitions)  # fmt: skip
    run_replay(options, pacer=QuitAfter(400))
    assert not (tmp_path / "r.jsonl").exists(), "stopped before the end: no ledger yet"
    again = run_replay(replace(options, resume=True))
    assert (tmp_path / "r.jsonl").read_bytes() == straight
    assert again["outcomes"] == report["outcomes"]


def test_replay_table_prints_the_lift_per_journey_and_variant(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "replay", str(SAMPLE), "--config", str(EXAMPLE),
         "--db", str(tmp_path / "s.db"), "--ledger", str(tmp_path / "l.jsonl"),
         "--report", str(tmp_path / "r.json"), "--partitions", "1", "--table"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "95% interval: Newcombe hybrid score interval" in done.stdout
    rows = [line.split()[0:2] for line in done.stdout.splitlines()]
    assert any(
        r[:1] == ["onboarding"] and "pp" in line
        for r, line in zip(rows, done.stdout.splitlines(), strict=True)
    )
    assert ["variant", "base"] in rows and ["variant", "b"] in rows


def test_generate_plant_lift_without_a_control_group_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "generate", "--customers", "10",
         "--plant-lift", "onboarding=0.08", "--out", str(tmp_path / "x.jsonl")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("omniconsole: error: journey 'onboarding' has no control group")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("onboarding", "JOURNEY=EFFECT"),
        ("onboarding=lots", "JOURNEY=EFFECT"),
        ("onboarding=0.7", "at most 0.6"),
        ("price_drop=0.1", "entered by 'Price Dropped'"),
        ("nope=0.1", "no journey 'nope'"),
    ],
)
def test_a_mistaken_plant_lift_is_refused_saying_why(tmp_path: Path, spec: str, words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "generate", "--customers", "10",
         "--config", str(EXAMPLE), "--plant-lift", spec, "--out", str(tmp_path / "x.jsonl")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert words in done.stderr


def test_serve_refuses_to_start_when_a_variants_template_is_missing(tmp_path: Path) -> None:
    from omniconsole.domain.templates import load_templates
    from omniconsole.engine.serve import ServeError, check_templates

    config = tmp_path / "config"
    shutil.copytree(EXAMPLE, config)
    journey = config / "journeys" / "onboarding.toml"
    journey.write_text(journey.read_text().replace('"nudge_day3_b"', '"nudge_day3_c"'))
    with pytest.raises(ServeError, match=r"no templates for onboarding\.nudge_day3_c"):
        check_templates(load_config(config), load_templates(config / "templates"))
    check_templates(
        load_config(EXAMPLE), load_templates(EXAMPLE / "templates")
    )  # the example is fine


def test_control_groups_hold_out_steps_that_channel_rules_decide(tmp_path: Path) -> None:
    """The channel rules (affinity, best hour, digests, topics) decide their steps on a
    path of their own; a customer in a control group is held out there too: no
    non-transactional message is sent to them, and every treated step still can be."""
    config = tmp_path / "config"
    shutil.copytree(shipped_config_dir() / "examples" / "channels", config)
    control = (EXAMPLE / "policy.toml").read_text().split("[global_control]")[1]
    with (config / "policy.toml").open("a") as policy:
        policy.write("\n[global_control]" + control)
    with (config / "journeys" / "price_drop.toml").open("a") as journey:
        journey.write("\n[holdout]\nshare = 0.2\n")
    report, ledger = replay(SAMPLE, tmp_path, config)
    lines = [orjson.loads(x) for x in ledger.splitlines()]
    assigner = Assigner(load_config(config))
    held: set[tuple[str, str]] = set()
    for journey in ("price_drop", "onboarding"):
        definition = assigner.journeys[journey]
        held |= {(x["customer"], journey) for x in lines if x["journey"] == journey
                 and assigner.arm_name(x["customer"], definition) in HELD_OUT_ARMS}  # fmt: skip
    assert held, "nobody drew a control arm"
    sent_to_control = [x for x in lines
                       if (x["customer"], x["journey"]) in held and x["outcome"] == "sent"]  # fmt: skip
    assert sent_to_control == []
    planned = [x for x in lines if (x["customer"], x["journey"]) in held
               and x["outcome"] == "held_out" and x["journey"] == "price_drop"]  # fmt: skip
    assert planned, "no price drop was held out under the channel rules"
    assert report["decisions"]["held_out"] == sum(x["outcome"] == "held_out" for x in lines)
