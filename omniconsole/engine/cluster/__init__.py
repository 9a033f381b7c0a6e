"""Partitions as Ray actors on a cluster (`omniconsole replay --ray ADDRESS|auto`).

`RayEngine` (`engine.py`) is the coordinator's side: it implements `Engine` exactly as
`PartitionedEngine` does over pipes, but each partition is a Ray actor
(`actor.py`) hosting the same `Partition` — profile shards, governor, dispatchers,
store writer — placed on the cluster's nodes, writing its part of a shared store
(PostgreSQL; SQLite parts only work when every node shares one disk). A lost
partition is recreated on a live node from its last checkpoint.

Ray is an optional extra (`pip install 'omniconsole[cluster]'`): this package imports
it only when a cluster is asked for, and says in one line what to install if it is
missing (`connect.py`).
"""

from __future__ import annotations

from omniconsole.engine.cluster.connect import ClusterError, RayMissing
from omniconsole.engine.cluster.engine import RayEngine

__all__ = ["ClusterError", "RayEngine", "RayMissing"]
