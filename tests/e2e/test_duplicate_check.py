"""The duplicate check keeps digests, not ids: a digest shared by two distinct message
ids drops neither event, and every real duplicate is still dropped — across a resume too.

The digest function is replaced by one that makes nearly every id collide, and the ids
kept exactly by a tiny window, so almost every check is settled by the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from store_logs import replay

from omniconsole.domain.generator import write_log
from omniconsole.engine import seen_ids
from omniconsole.engine.partitioned import PartitionedEngine
from omniconsole.engine.protocol import Cut

SMALL = {"checkpoint_events": 500, "batch_events": 500}


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log (its duplicates are resends in a row) plus one far from its first
    sending, by another customer, and lines that are rejected."""
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    write_log(path, 300, 14, 7, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=10)
    lines = path.read_bytes().splitlines()
    first = orjson.loads(lines[10])
    again = {**first, "userId": "someone-else", "timestamp": "2026-03-20T00:00:00Z"}
    middle = len(lines) // 2
    extra = [orjson.dumps(again), b"{not json"]
    path.write_bytes(b"\n".join([*lines[:middle], *extra, *lines[middle:]]) + b"\n")
    return path


def outputs(out: Path) -> tuple[bytes, dict[str, object], bytes]:
    return (
        (out / "ledger.jsonl").read_bytes(),
        orjson.loads((out / "report.json").read_bytes()),
        (out / "rejects.jsonl").read_bytes(),
    )


@pytest.mark.parametrize("partitions", [1, 2])
def test_ids_whose_digests_collide_are_all_applied_and_duplicates_still_dropped(
    log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    partitions: int,
) -> None:
    plain = replay(log, tmp_path / "plain", partitions=partitions, **SMALL)
    assert plain["events"]["duplicates"] > 0  # the log has real duplicates to catch
    monkeypatch.setattr(seen_ids, "DIGEST", lambda mid: len(mid) % 3)
    monkeypatch.setattr(seen_ids, "WINDOW", 8)
    collided = replay(log, tmp_path / "collided", partitions=partitions, **SMALL)
    assert collided["events"] == plain["events"]
    assert outputs(tmp_path / "collided") == outputs(tmp_path / "plain")


def test_with_colliding_digests_a_crash_between_the_commits_resumes_exactly(
    log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parts, one checkpoint ahead after the crash, hold events of lines the resumed
    run reads again: those ids are not seen yet when they come, though the store has
    them and their digests collide with ids that are."""
    replay(log, tmp_path / "whole")
    monkeypatch.setattr(seen_ids, "DIGEST", lambda mid: len(mid) % 3)
    monkeypatch.setattr(seen_ids, "WINDOW", 8)
    commits = 0
    original = PartitionedEngine.checkpoint

    def crash_on_third(self: PartitionedEngine, cut: Cut) -> None:
        nonlocal commits
        commits += 1
        if commits == 3:
            self.commit_parts(cut)
            raise RuntimeError("crashed between the parts' commit and the main store's")
        original(self, cut)

    with monkeypatch.context() as crash:
        crash.setattr(PartitionedEngine, "checkpoint", crash_on_third)
        with pytest.raises(RuntimeError, match="crashed between"):
            replay(log, tmp_path / "crash", partitions=2, **SMALL)
    replay(log, tmp_path / "crash", partitions=2, resume=True, **SMALL)
    assert outputs(tmp_path / "crash") == outputs(tmp_path / "whole")
