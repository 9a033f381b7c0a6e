"""One rate limit per provider across the cluster: every partition's adapter draws its
send slots from one bucket, so the provider sees the limit, not the limit times the
number of partitions."""

from __future__ import annotations

from typing import Any

import pytest

from omniconsole.engine.cluster.rate_limit import Reservations


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_at_once_and_the_rest_is_paced_at_the_rate() -> None:
    clock = Clock()
    bucket = Reservations(rate=10, burst=3, clock=clock)
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])
    clock.now += 1.0  # a quiet second refills the bucket up to its burst, no more
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0.0, 0.1])


def test_no_rate_means_no_waiting() -> None:
    bucket = Reservations(rate=0, burst=1, clock=Clock())
    assert {bucket.reserve() for _ in range(100)} == {0.0}


@pytest.mark.cluster
def test_partitions_on_different_nodes_share_one_bucket_per_provider(ray_cluster: Any) -> None:
    """Two tasks on two nodes each reserve 5 sends of a provider allowed 5 a second: the
    last of the 10 waits ~1.8 s. Had each its own bucket, none would wait over 0.8 s."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from omniconsole.engine.cluster.connect import alive_nodes

    @ray.remote(num_cpus=0.01)
    def five_sends(provider: str) -> list[float]:
        from omniconsole.engine.cluster.rate_limit import bucket_actor

        actor = bucket_actor(provider, rate=5, burst=1)
        return [float(ray.get(actor.reserve.remote())) for _ in range(5)]

    nodes = alive_nodes()[:2]
    refs = [
        five_sends.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)
        ).remote("test-provider")
        for n in nodes
    ]
    waits = sorted(w for part in ray.get(refs) for w in part)
    assert len(waits) == 10
    assert waits[-1] > 1.0
    assert waits[0] == 0.0
    ray.kill(ray.get_actor("rate-test-provider", namespace="omniconsole"))
