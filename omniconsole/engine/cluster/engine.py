"""RayEngine: a replay's partitions as Ray actors on a cluster's nodes (an `Engine`).

The coordinator (the process driving the replay) keeps the run's main store — `meta`
and `rejects` — and routes each accepted line to its customer's partition
(`crc32(customer) % partitions`), as `PartitionedEngine` does over pipes. Partition k
starts on the k-th live node (round robin; soft node affinity, so Ray may place it
elsewhere only if that node is gone) and writes its part of the store.

Back-pressure: at most WINDOW `apply` calls are unanswered per partition; the oldest
answer is awaited before the next is sent (calls to one actor finish in order, so this
also surfaces a partition's failure where it happened).

Losing a partition (its node died, or its process): the coordinator keeps every
request sent to a partition since that partition's last committed checkpoint, and
numbers them; each checkpoint records in the part's meta how many it includes
(`requests`). On any `RayActorError` the coordinator kills the old actor, starts a new
one on another live node — it resumes from the part's last checkpoint, taking over the
store's fence so the old one can never commit again — asks it how many requests that
checkpoint holds, and sends it the rest. Replaying the same requests from the same
checkpoint is what `--resume` relies on too, so the ledger is the same bytes as an
uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from omniconsole.actors.messages import Checkpoint, PartitionLine, Rows, StoreCall
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.store.base import Store
from omniconsole.domain.config import load_config
from omniconsole.domain.events import Event
from omniconsole.domain.records import StoreRecord
from omniconsole.domain.timeutil import from_micros, to_micros
from omniconsole.engine.cluster.connect import (
    ClusterError,
    alive_nodes,
    connect,
    disconnect,
    ray_module,
)
from omniconsole.engine.partition_worker import PartitionSpec
from omniconsole.engine.partitioned import PartitionFailure, partition_of
from omniconsole.engine.protocol import Cut

#: unanswered `apply` calls per partition
WINDOW = 4
#: times a partition may be recreated in a row without committing a checkpoint between
MAX_RECOVERIES = 3
#: the part's meta key: requests the committed checkpoint includes
REQUESTS_KEY = "requests"

_Request = tuple[Sequence[PartitionLine], int | None]


@dataclass(slots=True)
class _Part:
    """The coordinator's view of one partition."""

    index: int
    spec: PartitionSpec
    actor: Any = None
    node: str = ""
    #: requests sent since the last committed checkpoint; `base` numbers the first
    log: list[_Request] = field(default_factory=list)
    base: int = 0
    inflight: deque[Any] = field(default_factory=deque)
    recoveries: int = 0  # in a row, since the last committed checkpoint
    started: bool = False  # the first incarnation has answered `ready`

    @property
    def sent(self) -> int:
        return self.base + len(self.log)


class RayEngine:
    """The partition actors of one replay, and the run's main store."""

    def __init__(
        self,
        config_dir: Path,
        store: Store,
        count: int,
        *,
        resume: bool,
        address: str,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        """`count` partitions (0: one per live node) on the Ray cluster at `address`
        ("auto": start a local one)."""
        self.ray = ray_module()
        self._owns_ray = connect(address)
        self.notify = notify or _stderr
        self.config = load_config(config_dir)
        self.parts: list[_Part] = []
        self.writer: Any = None
        #: partitions recreated during this run (each a lost actor)
        self.recovered = 0
        try:
            nodes = alive_nodes()
            if not nodes:
                raise ClusterError(f"the Ray cluster at {address} has no live node")
            self.count = count or len(nodes)
            self._batch: list[list[PartitionLine]] = [[] for _ in range(self.count)]
            self.writer = StoreWriterActor.start(store, fresh=not resume)
            for k in range(self.count):
                spec = PartitionSpec(k, config_dir, store.part(k, self.count), resume)
                self.parts.append(_Part(k, spec))
            for part in self.parts:
                part.actor = self._create(part, nodes[part.index % len(nodes)])
            #: the last log line each partition had committed (a resumed run skips them)
            self.committed = [0] * self.count
            for part in self.parts:
                meta = self._ready(part)
                self.committed[part.index] = int(meta.get("checkpoint_line", "0"))
                part.base = int(meta.get(REQUESTS_KEY, "0"))
                part.started = True
        except BaseException:
            self.stop()
            raise

    # ---- placement ----

    def _create(self, part: _Part, node: str) -> Any:
        from omniconsole.engine.cluster.actor import PartitionActor

        strategy = self.ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            node, soft=True
        )
        part.node = node
        return PartitionActor.options(  # type: ignore[attr-defined]
            scheduling_strategy=strategy, name=None
        ).remote(part.spec, self.config)

    def _ready(self, part: _Part) -> dict[str, str]:
        """Wait for a new actor (recreating it if it is lost starting); note where it
        runs; its committed meta."""
        while True:
            generation = part.actor
            answer = self._get(part, part.actor.ready.remote())
            if part.actor is generation:
                meta, node = answer
                part.node = node
                return cast(dict[str, str], meta)

    def placement(self) -> dict[int, str]:
        """Partition -> the id of the node it runs on."""
        return {part.index: part.node for part in self.parts}

    # ---- Engine ----

    def add(self, line: int, event: Event, at: datetime, late: bool, raw: bytes) -> None:
        """Route the line to its customer's partition (unless it committed it already)."""
        index = partition_of(event.customer, self.count)
        if line > self.committed[index]:  # else that partition had it before a crash
            self._batch[index].append((line, raw, to_micros(at) if late else None))

    def write(self, records: Sequence[StoreRecord]) -> None:
        """Records of the run itself (rejects) go to the main store."""
        if records:
            self.writer.tell(Rows(records))

    def apply(self, horizon: datetime | None) -> None:
        """Each partition's lines, then timers due before `horizon` (every partition)."""
        micros = None if horizon is None else to_micros(horizon)
        lines, self._batch = self._batch, [[] for _ in range(self.count)]
        for part in self.parts:
            request: _Request = (lines[part.index], micros)
            part.log.append(request)
            self._submit(part, request)

    def drain(self) -> None:
        """Wait until every partition has applied everything sent so far."""
        self._ask_all("drain", lambda part: ())

    def next_due(self) -> datetime | None:
        """The earliest pending timer in any partition."""
        dues = [d for d in self._ask_all("next_due", lambda part: ()) if d is not None]
        return from_micros(min(dues)) if dues else None

    def checkpoint(self, cut: Cut) -> None:
        """Every partition commits its part at this cut, then the main store (parts
        first: on resume a part may be one checkpoint ahead of the main store)."""
        self.commit_parts(cut)
        self.writer.ask(Checkpoint(cut.meta))

    def commit_parts(self, cut: Cut) -> None:
        """Every partition commits its part at this cut (the main store not yet)."""
        share = max(1, cut.max_active // self.count)
        now = to_micros(cut.now)
        self._ask_all(
            "checkpoint",
            lambda part: ({**cut.meta, REQUESTS_KEY: str(part.sent)}, now, share, cut.budget),
        )
        for part in self.parts:  # committed: nothing before this needs resending
            part.base, part.log, part.recoveries = part.sent, [], 0

    def meta(self) -> dict[str, str]:
        """The main store's committed run facts."""
        return cast(dict[str, str], self.writer.ask(StoreCall(lambda s: s.meta())))

    def stop(self) -> None:
        """Stop every partition actor (uncommitted work is rolled back), then the main
        store's writer; never raises."""
        ray = self.ray
        stopping = []
        for part in self.parts:
            if part.actor is not None:
                with contextlib.suppress(Exception):
                    stopping.append((part, part.actor.stop.remote()))
        for part, ref in stopping:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(part.actor, no_restart=True)
            part.actor = None
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.stop()
        if self._owns_ray:
            with contextlib.suppress(Exception):
                disconnect()
            self._owns_ray = False

    # ---- calls, and recovery ----

    def _submit(self, part: _Part, request: _Request) -> None:
        """Send one `apply`, first awaiting the oldest answer if WINDOW are out."""
        while len(part.inflight) >= WINDOW:
            self._get(part, part.inflight.popleft())
        part.inflight.append(part.actor.apply.remote(*request))

    def _get(self, part: _Part, ref: Any) -> Any:
        """The answer of one call; a lost actor is recreated (and the call's effect with
        it: the caller must not resend), a partition's own failure raised."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            if exc.actor_init_failed:  # the partition could not start: no node helps
                raise PartitionFailure(f"partition {part.index}: {_reason(exc)}") from None
            self._recover(part, exc)
            return None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise PartitionFailure(f"partition {part.index}: {_first_line(cause)}") from None

    def _ask_all(self, method: str, args: Callable[[_Part], tuple[Any, ...]]) -> list[Any]:
        """Call `method` on every partition and wait for every answer, in order after
        everything sent before; a lost partition is recreated and asked again."""
        refs = {part.index: getattr(part.actor, method).remote(*args(part)) for part in self.parts}
        answers: list[Any] = []
        for part in self.parts:
            while True:
                generation = part.actor
                while part.inflight and part.actor is generation:
                    self._get(part, part.inflight.popleft())
                if part.actor is generation:
                    answer = self._get(part, refs[part.index])
                    if part.actor is generation:
                        answers.append(answer)
                        break
                # recreated meanwhile: the log was resent; ask the new one
                refs[part.index] = getattr(part.actor, method).remote(*args(part))
        return answers

    def _recover(self, part: _Part, why: BaseException) -> None:
        """Recreate a lost partition on a live node and resend what it had not committed."""
        ray = self.ray
        lost = part.node
        while True:
            part.recoveries += 1
            self.recovered += 1
            if part.recoveries > MAX_RECOVERIES:
                raise PartitionFailure(
                    f"partition {part.index} was lost {MAX_RECOVERIES} times without"
                    f" committing a checkpoint: {_first_line(why)}"
                )
            with contextlib.suppress(Exception):
                ray.kill(part.actor, no_restart=True)
            part.inflight.clear()
            spec = part.spec
            part.spec = PartitionSpec(spec.index, spec.config_dir, spec.store, resume=True)
            part.actor = self._create(part, self._replacement_node(lost))
            try:
                meta, node = ray.get(part.actor.ready.remote())
                part.node = node
                committed = int(meta.get(REQUESTS_KEY, "0"))
                if not part.started:  # lost before its first answer: it starts here
                    part.base = committed
                if not part.base <= committed <= part.sent:
                    raise PartitionFailure(
                        f"partition {part.index}: its store holds {committed} requests,"
                        f" the coordinator has {part.base} to {part.sent}"
                    )
                self.notify(
                    f"omniconsole: partition {part.index} lost ({_first_line(why)});"
                    f" recreated on node {node[:12]} from its checkpoint, resending"
                    f" {part.sent - committed} batches"
                )
                pending = part.log[committed - part.base :]
                part.log = part.log[: committed - part.base]
                generation = part.actor
                for request in pending:
                    part.log.append(request)
                    self._submit(part, request)
                    if part.actor is not generation:
                        return  # lost again meanwhile and recovered by a nested call
                return
            except ray.exceptions.RayActorError as exc:
                if exc.actor_init_failed:
                    raise PartitionFailure(f"partition {part.index}: {_reason(exc)}") from None
                why, lost = exc, part.node

    def _replacement_node(self, lost: str) -> str:
        """A live node other than `lost` (which may still be listed alive for a while),
        hosting the fewest partitions."""
        nodes = alive_nodes()
        others = [n for n in nodes if n != lost] or nodes
        if not others:
            raise PartitionFailure("no live node left in the Ray cluster")
        load = {n: 0 for n in others}
        for part in self.parts:
            if part.node in load:
                load[part.node] += 1
        return min(others, key=lambda n: load[n])


def _reason(exc: BaseException) -> str:
    """Why an actor's `__init__` failed: the last line of the traceback Ray quotes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _stderr(message: str) -> None:
    if sys.stderr is sys.__stderr__:  # under the console, stderr is its screen
        print(message, file=sys.stderr, flush=True)
