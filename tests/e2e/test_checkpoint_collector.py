"""The replay's garbage collection at checkpoints: rarer while it finds nothing, and
cyclic garbage is still freed (a long replay's memory does not grow with it)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from omniconsole.engine.collector import MAX_GAP, QUIET_COLLECTION, RUNNING, CheckpointCollector


class _Node:
    """One object of a reference cycle: reference counting alone never frees it."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycles(count: int) -> list[weakref.ref[_Node]]:
    """`count` two-object cycles, unreachable at return; weak references to watch them."""
    watched = []
    for _ in range(count):
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        watched.append(weakref.ref(a))
    return watched


@pytest.fixture
def collector() -> Iterator[CheckpointCollector]:
    collector = CheckpointCollector()
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def test_quiet_collections_space_out_up_to_the_bound(collector: CheckpointCollector) -> None:
    for _ in range(3 * MAX_GAP - 1):
        collector.checkpoint(RUNNING)
    # gaps 2, 4, 8, 16, 16 after each: collections at checkpoints 1, 3, 7, 15, 31 and 47
    assert collector.collections == 6
    assert collector.gap == MAX_GAP


def test_cyclic_garbage_is_freed_within_the_gap_and_brings_collection_back(
    collector: CheckpointCollector,
) -> None:
    for _ in range(7):  # quiet: the gap grows
        collector.checkpoint(RUNNING)
    assert collector.gap > 1
    watched = _cycles(QUIET_COLLECTION + 1)
    assert all(ref() is not None for ref in watched), "automatic collection stayed off"
    for _ in range(collector.gap):
        collector.checkpoint(RUNNING)
    assert all(ref() is None for ref in watched), "the cycles outlived the gap"
    assert collector.gap == 1  # it found garbage: the next checkpoint collects again


def test_the_last_checkpoint_and_stop_hand_collection_back() -> None:
    enabled = gc.isenabled()
    collector = CheckpointCollector()
    collector.start()
    assert not gc.isenabled()
    collector.checkpoint("finished")
    assert collector.collections == 0  # the run's last checkpoint collects nothing
    collector.stop()
    assert gc.isenabled() == enabled
