"""An ingest process answers one request from several partitions' answers: what the
sender is told is what happened to its events, whichever partition took each."""

from __future__ import annotations

from omniconsole.adapters.http.ports import IngestResult
from omniconsole.engine.cluster.live import merge_results


def test_partitions_answers_add_up_to_the_requests_answer() -> None:
    first = IngestResult(accepted=2, duplicates=1, duplicate_ids=frozenset({"m-1"}))
    second = IngestResult(accepted=3, duplicates=1, duplicate_ids=frozenset({"m-9"}))
    merged = merge_results([([0, 2, 4], first), ([1, 3, 5, 6], second)])
    assert (merged.accepted, merged.duplicates) == (5, 2)
    assert merged.duplicate_ids == frozenset({"m-1", "m-9"})


def test_a_refused_event_is_named_by_its_place_in_the_whole_request() -> None:
    first = IngestResult(accepted=1, rejected=((1, "bad timestamp"),))
    second = IngestResult(accepted=1, rejected=((0, "too large"),))
    merged = merge_results([([0, 3], first), ([1, 2], second)])
    assert merged.rejected == ((1, "too large"), (3, "bad timestamp"))
