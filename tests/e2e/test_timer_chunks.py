"""Timers that fire together are begun a few thousand customers at a time, so the
profiles they load beyond --max-active leave memory between chunks: the decisions, and
so the ledger, are the same bytes as when they are all begun at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from store_logs import replay

from omniconsole.actors import profile_shard
from omniconsole.domain.generator import write_log


def test_timers_begun_in_chunks_decide_exactly_as_all_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    write_log(log, 300, 14, 3, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=6)
    whole = replay(log, tmp_path / "whole", max_active=20)
    chunks: list[int] = []
    begin_due = profile_shard.ProfileShardActor._begin_due

    def counted(self: profile_shard.ProfileShardActor, run: Any) -> None:
        chunks.append(run.next_due)
        begin_due(self, run)

    monkeypatch.setattr(profile_shard, "TIMER_CHUNK", 3)
    monkeypatch.setattr(profile_shard.ProfileShardActor, "_begin_due", counted)
    chunked = replay(log, tmp_path / "chunked", max_active=20)
    assert any(start > 0 for start in chunks)  # some batch's timers came in several chunks
    assert chunked == whole
    for name in ("ledger.jsonl", "report.json", "rejects.jsonl"):
        assert (tmp_path / "chunked" / name).read_bytes() == (
            tmp_path / "whole" / name
        ).read_bytes()
