"""Without --max-active a replay keeps profiles by a budget: each partition at least its
share of the default, more while it knows few customers (bringing a profile back from
the store and evicting it again cost 10-15 % of a replay's CPU), coming down to the
share as customers accumulate. An explicit --max-active stays a hard cap. Neither
changes a decision: the outputs are the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_logs import replay, same_outputs

from omniconsole.actors.profile_shard import ProfileShardActor
from omniconsole.domain.generator import write_log
from omniconsole.engine import replay as replay_module


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    write_log(path, 100, 14, 3, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=6)
    return path


def test_the_default_keeps_more_profiles_in_memory_and_decides_the_same(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits: list[int] = []
    evict = ProfileShardActor._evict

    def recorded(self: ProfileShardActor, max_active: int) -> None:
        limits.append(max_active)
        evict(self, max_active)

    monkeypatch.setattr(ProfileShardActor, "_evict", recorded)
    capped = replay(log, tmp_path / "capped", max_active=20)
    assert limits and set(limits) == {20}  # a hard cap: 20 whole profiles, never more
    limits.clear()
    monkeypatch.setattr(replay_module, "DEFAULT_MAX_ACTIVE", 20)
    kept = replay(log, tmp_path / "budget")
    # up to 20 * 5 // 2 = 50 while few are known, 40 once all 100 customers are
    assert limits and min(limits) >= 40 and max(limits) <= 50
    assert kept == capped
    assert same_outputs(tmp_path / "capped", tmp_path / "budget") == []


def test_partitions_under_the_budget_decide_as_one_capped_process(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay(log, tmp_path / "capped", max_active=20)
    monkeypatch.setattr(replay_module, "DEFAULT_MAX_ACTIVE", 20)  # a share of 10 each
    replay(log, tmp_path / "budget", partitions=2)
    assert same_outputs(tmp_path / "capped", tmp_path / "budget") == []
