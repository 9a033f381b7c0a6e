"""Fixtures for the console tests: stores the real engine wrote, and waiting helpers.

The replayed worlds are built once per session (the console only reads them); a test
that needs the store to change under the console runs its own engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from worlds import CHANNELS_CONFIG, CHANNELS_STORY, PLANTED_LIFT, replay_world

from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.generator import PlantedLift, write_log
from omniconsole.engine.replay import ReplayOptions, run_replay


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The story of `worlds.STORY`, replayed in one process up to `worlds.UNTIL`."""
    return replay_world(tmp_path_factory.mktemp("story"))


@pytest.fixture(scope="session")
def channels_story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`worlds.CHANNELS_STORY` replayed with the example config's channel rules."""
    return replay_world(tmp_path_factory.mktemp("channels"), CHANNELS_STORY,
                        config=CHANNELS_CONFIG)  # fmt: skip


@pytest.fixture(scope="session")
def story_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same story replayed in two partition processes (a store in three files)."""
    return replay_world(tmp_path_factory.mktemp("story-parts"), partitions=2)


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample (300 customers, 14 days) replayed to the end: 1,372 decisions,
    276 handoffs — more than a page of each."""
    folder = tmp_path_factory.mktemp("sample")
    log = Path(__file__).resolve().parents[2] / "examples" / "sample.jsonl"
    run_replay(
        ReplayOptions(log=log, db=folder / "store.db", ledger=folder / "ledger.jsonl",
                      report=folder / "report.json")
    )  # fmt: skip
    return folder / "store.db"


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """5,000 generated customers with an onboarding lift of 8 points planted, replayed
    with the example config (control groups and a variant): the store and its report."""
    folder = tmp_path_factory.mktemp("planted")
    example = shipped_config_dir() / "examples" / "holdouts"
    plant = PlantedLift(load_config(example), {"onboarding": PLANTED_LIFT})
    log = folder / "planted.jsonl"
    write_log(log, 5000, 14, 11, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=4,
              plant=plant)  # fmt: skip
    report = run_replay(
        ReplayOptions(log=log, db=folder / "store.db", ledger=folder / "ledger.jsonl",
                      report=folder / "report.json", config_dir=example, partitions=1)
    )  # fmt: skip
    return folder / "store.db", report
