"""One simulated Ray cluster per session: a head and two worker nodes on this machine.

`ray.cluster_utils.Cluster` starts real Ray nodes (each its own raylet and workers), so
placement, node loss and recovery are Ray's own. Lean settings: no dashboard, an 80 MiB
object store per node (Ray's minimum is 75), and health checks every 0.5 s, so a killed
node is noticed in ~2 s rather than ~15 s. Teardown is explicit — the driver
disconnects, then every node is stopped; `make test` ends with `ray stop --force` in
case a crashed session left any behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")

MiB = 1 << 20
NODE = {"num_cpus": 1, "object_store_memory": 80 * MiB}
FAST_HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_initial_delay_ms": 0,
}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A running 3-node cluster with this process connected as its driver."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE, "include_dashboard": False,
                        "_system_config": FAST_HEALTH_CHECKS},
    )  # fmt: skip
    try:
        for _ in range(2):
            cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="error", log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def three_nodes(ray_cluster: Any) -> Iterator[Any]:
    """The cluster, with three live nodes before and after the test (a test may remove
    a worker node: a new one takes its place afterwards)."""
    yield ray_cluster
    while len(ray_cluster.worker_nodes) < 2:
        ray_cluster.add_node(**NODE)
    ray_cluster.wait_for_nodes()
