"""What a benchmark run may start for itself: a PostgreSQL server, a simulated Ray cluster.

Both are stopped explicitly when the run ends (pgserver's atexit hook and Ray's are not
relied on: a run that fails must not leave a server behind on a shared machine).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MiB = 1 << 20


@contextmanager
def postgres(workdir: Path) -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL with its default (durable) settings, and a database created
    with locale C; yields (its URL, the postmaster's pid)."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="omni-xdg-")
    import pgserver
    import psycopg

    data = Path(tempfile.mkdtemp(prefix="omni-bench-pg-", dir=workdir)) / "data"
    server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        root = server.get_uri()
        with psycopg.connect(root, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'")
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        yield root.replace("/postgres?", "/bench?"), postmaster
    finally:
        server.cleanup()


@contextmanager
def ray_cluster(nodes: int) -> Iterator[str]:
    """A simulated cluster of `nodes` lean nodes (no dashboard, 80 MiB object store);
    yields its address, this process connected as the driver."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 80 * MiB}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="error", log_to_driver=False)
        yield str(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
