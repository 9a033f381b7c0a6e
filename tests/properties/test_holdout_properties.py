"""Held-out steps never count against caps, over random event logs (whole engine).

The logs are those of `test_engine_properties` (customers `p-0` … `p-3`), replayed with
a config that holds some of them out: a global control group of 10% (which, by the
stable hash, holds `p-1` and `p-3`) and journey holdouts of 50% on onboarding, price
drops and recommendations. Checked on the ledger file alone:

- a member of the global control group is never sent a capped message and never
  capped: nothing of theirs counts, so no cap can fill;
- every cap reason in the ledger is justified by `sent` lines alone — held-out lines
  never filled a window.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from test_engine_properties import PROPERTY, logs, parse, replay, sent_capped, when, workdir

from omniconsole.domain.assignment import HOLDOUT_GLOBAL, journey_arm
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir

LIMITS = {("all", "24h"): 2, ("all", "7d"): 5, ("sms", "24h"): 1, ("whatsapp", "24h"): 1}
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
CAP = re.compile(r"cap:(\w+):(\w+)")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("holdout-config") / "config"
    shutil.copytree(shipped_config_dir(), target, ignore=shutil.ignore_patterns("examples"))
    with (target / "policy.toml").open("a") as policy:
        policy.write("\n[global_control]\nshare = 0.1\n")
    for name in ("onboarding", "price_drop", "product_recommendation"):
        with (target / "journeys" / f"{name}.toml").open("a") as journey:
            journey.write("\n[holdout]\nshare = 0.5\n")
    return target


def global_members(config: EngineConfig) -> set[str]:
    onboarding = next(j for j in config.journeys if j.name == "onboarding")
    members = {
        c
        for c in ("p-0", "p-1", "p-2", "p-3")
        if journey_arm(c, onboarding, config.policy.global_control) == HOLDOUT_GLOBAL
    }
    assert members == {"p-1", "p-3"}, "the examples below rely on these members"
    return members


def ledger_with(log: list[dict[str, Any]], config: Path) -> list[dict[str, Any]]:
    with workdir() as directory:
        return parse(replay(log, directory, config_dir=config))


@PROPERTY
@given(log=logs())
def test_a_member_of_the_global_control_group_is_never_sent_to_nor_capped(
    config_dir: Path, log: list[dict[str, Any]]
) -> None:
    members = global_members(load_config(config_dir))
    for line in ledger_with(log, config_dir):
        if line["customer"] not in members or line["category"] == "transactional":
            continue
        assert line["outcome"] != "sent", line
        assert not (line["reason"] or "").startswith("cap:"), line


@PROPERTY
@given(log=logs())
def test_every_cap_in_the_ledger_was_filled_by_sent_messages_alone(
    config_dir: Path, log: list[dict[str, Any]]
) -> None:
    lines = ledger_with(log, config_dir)
    sends: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for line in sent_capped(lines):
        sends[line["customer"]].append((when(line["at"]), line["channel"]))
    for line in lines:
        match = CAP.fullmatch(line["reason"] or "")
        if match is None:
            continue
        scope, label = match.groups()
        at, window = when(line["at"]), WINDOWS[label]
        counted = [
            t for t, ch in sends[line["customer"]] if at - window < t <= at and scope in ("all", ch)
        ]
        assert len(counted) >= LIMITS[(scope, label)], (line, counted)
