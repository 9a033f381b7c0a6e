"""The Ray actor that hosts one partition: `partition_worker.Partition`, unchanged.

One sync actor per partition (`max_concurrency=1`): Ray runs one caller's calls in
the order they were submitted, one at a time — the pipe protocol's guarantee. Its
methods mirror that protocol (`PartitionApply`, `PartitionDrain`, …); every public
method runs on the actor's Ray worker thread, one at a time, and drives the partition's
pykka system (its own threads) as the partition process's main loop does.

Ray never restarts it and never retries its calls (`max_restarts=0`,
`max_task_retries=0`): a retried call would run against a partition restored from an
older checkpoint, and the calls that had finished on the lost one would be skipped.
The coordinator recreates a lost partition itself and resends what the partition had
not committed (see `engine.py`).

This module imports Ray: import it only once Ray is known to be there.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence

import ray

from omniconsole.actors.messages import PartitionLine
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.timeutil import from_micros, to_micros
from omniconsole.engine.collector import RUNNING
from omniconsole.engine.partition_worker import Partition, PartitionSpec
from omniconsole.engine.protocol import Cut


@ray.remote(num_cpus=0.01, max_restarts=0, max_task_retries=0)  # max_concurrency: 1
class PartitionActor:
    """One partition's engine in a Ray worker process.

    `num_cpus=0.01`: a request of zero CPUs makes Ray ignore the node affinity the
    coordinator places it with; any non-zero request is honoured, and so small a one
    never stops partitions sharing a node.
    """

    def __init__(self, spec: PartitionSpec, config: EngineConfig) -> None:
        """Runs on the actor's worker thread: start the partition's actor system."""
        sys.setswitchinterval(spec.switch_interval)
        self.partition: Partition | None = Partition(spec, config)
        # collection once per checkpoint, as in a partition process (the worker
        # process is this actor's alone)
        self.partition.collector.start()
        self.resume = spec.resume

    def _part(self) -> Partition:
        if self.partition is None:
            raise RuntimeError("partition stopped")
        return self.partition

    def ready(self) -> tuple[dict[str, str], str]:
        """Runs on the worker thread: the committed meta of this part (empty when it
        started fresh) and the node it runs on."""
        meta = self._part().engine.meta() if self.resume else {}
        return meta, str(ray.get_runtime_context().get_node_id())

    def apply(self, lines: Sequence[PartitionLine], horizon: int | None) -> None:
        """Runs on the worker thread: `PartitionApply` (may return before applied)."""
        self._part().apply(lines, horizon)

    def drain(self) -> None:
        """Runs on the worker thread: `PartitionDrain`."""
        self._part().engine.drain()

    def next_due(self) -> int | None:
        """Runs on the worker thread: `PartitionNextDue` (drains first)."""
        engine = self._part().engine
        engine.drain()
        due = engine.next_due()
        return None if due is None else to_micros(due)

    def checkpoint(self, meta: Mapping[str, str], now: int, max_active: int, budget: bool) -> None:
        """Runs on the worker thread: `PartitionCheckpoint`, one transaction."""
        part = self._part()
        part.engine.checkpoint(Cut(meta, from_micros(now), max_active, budget))
        part.collector.checkpoint(meta.get("status", RUNNING))

    def stop(self) -> None:
        """Runs on the worker thread: stop the actor system and join its threads
        (uncommitted work is rolled back). A Ray actor with live non-daemon threads
        never exits gracefully: the coordinator calls this, then kills the actor."""
        partition, self.partition = self.partition, None
        if partition is not None:
            with contextlib.suppress(Exception):
                partition.engine.stop()
            partition.collector.stop()
