"""Connecting the coordinator to Ray: an existing cluster, or a local one for `auto`."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

#: what to install when `--ray` is used without Ray
INSTALL_HINT = "--ray needs Ray: pip install 'omniconsole[cluster]'"
#: a local `--ray auto` instance's shared-memory object store. Batches of lines are
#: ~0.7 MB and at most 4 are in flight per partition: 80 MiB is plenty, and Ray's
#: default (30% of RAM) would take gigabytes of /dev/shm for nothing.
OBJECT_STORE_BYTES = 80 * 1024 * 1024


class ClusterError(RuntimeError):
    """Ray cannot be reached or used; one line says why."""


class RayMissing(ClusterError):
    """Ray is not installed."""


def ray_module() -> ModuleType:
    """`ray`, or RayMissing naming the extra to install."""
    # Ray reads these when it is imported or starts processes: quiet, no telemetry
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise RayMissing(INSTALL_HINT) from None
    return ray


def connect(address: str, *, cpus: int | None = None) -> bool:
    """Connect this process to Ray at `address` ("auto": start a local instance).

    Returns whether this call connected (so the caller disconnects at the end); a
    process already connected (a test's cluster, an embedding program) is left as is.
    """
    ray = ray_module()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": "error", "log_to_driver": False}
    try:
        if address == "auto":
            ray.init(
                address="local",
                num_cpus=cpus,
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                **options,
            )
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot connect to Ray at {address}: {exc}") from None
    return True


def disconnect() -> None:
    """Disconnect (and stop a local instance this process started)."""
    ray_module().shutdown()


def alive_nodes() -> list[str]:
    """The ids of the cluster's live nodes, in the order Ray lists them."""
    ray = ray_module()
    return [str(n["NodeID"]) for n in ray.nodes() if n.get("Alive")]
