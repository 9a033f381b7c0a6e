"""`serve` at scale: live partitions as named Ray actors, stateless ingest in front.

    load balancer ─▶ omniconsole serve --ray … (any number: stateless HTTP ingest)
                        │ each event to its customer's partition (crc32 % N)
                        ▼
                 LivePartitionActor k (named, on a cluster node): the live engine of
                 one partition over its part of the PostgreSQL store — shard,
                 governor, dispatchers with real adapters, store writer — committing
                 before it answers; the outbox as on one machine
                        │ sends paced by one token bucket per provider (`rate_limit`)

An ingest process answers an HTTP request only once every partition its events went to
has committed them (the partition's group commit, as `serve` on one machine). It keeps
no state: the partitions are found by name (`live-<schema>-p<k>`) and created by the
first ingest process that finds them missing, detached from it — so ingest processes
come and go, and `omniconsole serve --ray … --stop` stops the partitions.

A partition sends with adapters built from the environment of the node it runs on (set
the channels' variables where `ray start` runs, as for `serve`). Ray restarts a
partition whose node or process died (on a live node: its placement is soft); it
resumes from its part's last checkpoint and takes over the part's fence. A request in
flight then fails with 503 and the sender retries; `messageId` dedupes the retry, within
the partition that owns the customer (a retry carries the same customer).

This module imports Ray: import it only once Ray is known to be there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, cast

import orjson
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from omniconsole.adapters.channels.registry import build_adapters
from omniconsole.adapters.channels.resilience import TokenBucket
from omniconsole.adapters.channels.settings import load_channel_settings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestResult
from omniconsole.adapters.store.base import Store, StoreReader
from omniconsole.adapters.store.parts import PARTS_KEY
from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.events import Event
from omniconsole.domain.templates import TemplateSet
from omniconsole.engine.cluster.connect import alive_nodes
from omniconsole.engine.cluster.rate_limit import NAMESPACE, ClusterBucket
from omniconsole.engine.live import LiveEngine
from omniconsole.engine.partitioned import partition_of

#: concurrent `submit` calls a partition takes (each waits for the next group commit)
CONCURRENT_REQUESTS = 64
#: seconds between two checks that every partition answers (`health`)
HEALTH_EVERY = 2.0


@ray.remote(  # type: ignore[call-overload]  # Ray's stubs lack max_concurrency
    num_cpus=0.01,
    max_restarts=-1,
    max_task_retries=0,
    max_concurrency=CONCURRENT_REQUESTS,
)
class LivePartitionActor:
    """One partition's live engine. `submit` calls run on Ray's worker threads (up to
    CONCURRENT_REQUESTS at once, each waiting for its commit); the engine's own commit
    thread, delivery loop and actors run beside them."""

    def __init__(self, index: int, config: EngineConfig, store: Store,
                 templates: TemplateSet) -> None:  # fmt: skip
        """Runs on a worker thread: build the adapters from this node's environment and
        start the live engine from the part's last checkpoint."""
        self.index = index
        settings = load_channel_settings(os.environ)
        self.adapters = build_adapters(settings)
        share_rate_limits(self.adapters.by_channel)
        self.loop = asyncio.new_event_loop()  # the adapters' loop
        self._loop_thread = threading.Thread(
            target=self.loop.run_forever, name="live-adapters", daemon=True
        )
        self._loop_thread.start()
        self.engine = _live_engine(config, store, self.adapters, templates, self.loop, settings)
        self.engine.start()

    def submit(self, events: list[Event]) -> IngestResult:
        """Runs on a worker thread: the events, committed (group commit)."""
        return self.engine.submit(events).result()

    def health(self) -> dict[str, Any]:
        """Runs on a worker thread: the engine's /healthz details."""
        return {"partition": self.index, **self.engine.health()}

    def stop(self) -> None:
        """Runs on a worker thread: let sends in flight answer, commit, stop."""
        self.engine.stop()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.adapters.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _live_engine(
    config: EngineConfig,
    store: Store,
    adapters: Any,
    templates: TemplateSet,
    loop: asyncio.AbstractEventLoop,
    settings: Any,
) -> LiveEngine:
    """The live engine of one partition, as `serve` builds it on one machine.

    `LiveEngine` is changing hands (the `live` branch moves delivery onto a loop of its
    own and takes delivery settings instead of a loop): this builds either shape."""
    parameters = inspect.signature(LiveEngine).parameters
    build: Any = LiveEngine
    if "loop" in parameters:
        return cast(LiveEngine, build(config, store, adapters.by_channel, templates, loop,
                                      Metrics(), not_configured=adapters.not_configured))  # fmt: skip
    return cast(LiveEngine, build(config, store, adapters.by_channel, templates, Metrics(),
                                  delivery=getattr(settings, "delivery", None),
                                  not_configured=adapters.not_configured))  # fmt: skip


def merge_results(parts: list[tuple[list[int], IngestResult]]) -> IngestResult:
    """One request's result from its partitions' (each with the request's indexes of the
    events it took): counts added, id sets joined, refused events named by their index
    in the whole request."""
    merged: dict[str, Any] = {}
    for item in dataclasses.fields(IngestResult):
        values = [getattr(result, item.name) for _, result in parts]
        if item.name == "rejected":
            merged[item.name] = tuple(
                sorted((indexes[i], why) for indexes, result in parts for i, why in values_of(result))
            )
        elif all(isinstance(v, int) for v in values):
            merged[item.name] = sum(values)
        elif all(isinstance(v, frozenset) for v in values):
            merged[item.name] = frozenset().union(*values)
    return IngestResult(**merged)


def values_of(result: IngestResult) -> list[tuple[int, str]]:
    """The (index, reason) pairs a partition refused."""
    return list(getattr(result, "rejected", ()))


def share_rate_limits(adapters: Mapping[Channel, Any]) -> None:
    """Pace every channel's sends by its provider's bucket in the cluster (`rate_limit`)
    instead of this process's own.

    Each adapter runs its sends through a `DeliveryGuard` per channel, whose `limiter`
    is the local token bucket; the cluster's bucket replaces it with the same rate and
    burst. (The adapters keep their guards private; they are looked up by name here.)
    """
    for channel, adapter in adapters.items():
        guards = getattr(adapter, "_guards", None)
        if not isinstance(guards, dict):
            guard = getattr(adapter, "_guard", None)
            guards = {channel: guard} if guard is not None else {}
        for guarded, guard in guards.items():
            local = getattr(guard, "limiter", None)
            if isinstance(local, TokenBucket) and local.rate > 0:
                name = guarded.value if isinstance(guarded, Channel) else str(guarded)
                guard.limiter = ClusterBucket(name, local.rate, local.burst)


def store_key(store: Store) -> str:
    """A short name for the store, the same whichever way a URL spells it."""
    location = getattr(store, "location", None)
    key = location.key if isinstance(location, PgLocation) else store.describe()
    return f"{zlib.crc32(key.encode()):08x}"


@ray.remote(num_cpus=0.01, max_restarts=-1)
class LiveDirectory:
    """How many live partitions a store has: decided once, by the first ingest process
    (Ray creates one actor per name however many ask at once), and recorded in the main
    store, so the count survives the cluster and consoles find the parts."""

    def __init__(self, store: Store, count: int, meta: dict[str, str]) -> None:
        """Runs on the actor's worker thread: read the count the store has, or record
        `count` with the run's `meta`."""
        self.count = count
        if store.exists():
            with contextlib.closing(store.reader()) as reader:
                names = orjson.loads(reader.meta().get(PARTS_KEY, "[]"))
            if isinstance(names, list) and names:
                self.count = len(names)
                return
        writer = store.writer()
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(writer.open(fresh=False))
            loop.run_until_complete(writer.checkpoint({**meta, **store.parts_meta(count)}))
        finally:
            loop.run_until_complete(writer.close())
            loop.close()

    def partitions(self) -> int:
        """Runs on the actor's worker thread: the store's partition count."""
        return self.count


def live_partitions(
    store: Store, count: int, config: EngineConfig, templates: TemplateSet, meta: dict[str, str]
) -> list[Any]:
    """The store's live partitions: found by name, or created (detached, round robin
    over the live nodes with soft affinity) by whoever asks first. `count` and `meta`
    count only if the store has no partitions yet."""
    key = store_key(store)
    directory = LiveDirectory.options(  # type: ignore[attr-defined]
        name=f"live-{key}", namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(store, count, meta)
    count = int(ray.get(directory.partitions.remote()))
    nodes = alive_nodes()
    actors = []
    for k in range(count):
        placement = NodeAffinitySchedulingStrategy(nodes[k % len(nodes)], soft=True)
        actors.append(
            LivePartitionActor.options(  # type: ignore[attr-defined]
                name=f"live-{key}-p{k}",
                namespace=NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                scheduling_strategy=placement,
            ).remote(k, config, store.part(k, count), templates)
        )
    return actors


def stop_partitions(store: Store) -> int:
    """Stop the store's live partitions (each commits first); how many were running."""
    key = store_key(store)
    stopped = 0
    try:
        directory: Any = ray.get_actor(f"live-{key}", namespace=NAMESPACE)
    except ValueError:
        return 0
    count = int(ray.get(directory.partitions.remote()))
    for k in range(count):
        try:
            actor = ray.get_actor(f"live-{key}-p{k}", namespace=NAMESPACE)
        except ValueError:
            continue
        with contextlib.suppress(Exception):
            ray.get(actor.stop.remote(), timeout=60)
        ray.kill(actor, no_restart=True)
        stopped += 1
    ray.kill(directory, no_restart=True)
    return stopped


class ClusterIngest:
    """The HTTP front's `IngestSink` over the cluster's live partitions."""

    def __init__(self, actors: list[Any], reader: StoreReader) -> None:
        self.actors = actors
        self.reader = reader
        self._reader_lock = threading.Lock()
        self._health: dict[str, Any] = {"engine": "starting", "partitions": len(actors)}
        self._checked = 0.0

    async def accept(self, events: list[Event]) -> IngestResult:
        """Each event to its customer's partition; return once all have committed (a
        partition's failure raises: the HTTP front answers 503, the sender retries)."""
        groups: dict[int, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            groups[partition_of(event.customer, len(self.actors))].append(index)
        refs = [self.actors[k].submit.remote([events[i] for i in indexes])
                for k, indexes in groups.items()]  # fmt: skip
        results: list[IngestResult] = await asyncio.gather(*refs)
        return merge_results(list(zip(groups.values(), results, strict=True)))

    async def customer_for_phone(self, phone: str) -> str | None:
        """The customer whose profile holds this number, in any partition."""
        customers = await asyncio.to_thread(self._customers_for_phone, phone)
        return customers[0] if customers else None

    async def customers_for_phone(self, phone: str) -> list[str]:
        """Every customer whose profile holds this number, in any partition."""
        return await asyncio.to_thread(self._customers_for_phone, phone)

    def _customers_for_phone(self, phone: str) -> list[str]:
        with self._reader_lock:
            return self.reader.customers_for_phone(phone)

    def health(self) -> dict[str, Any]:
        """The last check of every partition (refreshed in the background)."""
        if time.monotonic() - self._checked > HEALTH_EVERY:
            self._checked = time.monotonic()
            asyncio.get_running_loop().create_task(self._check())
        return dict(self._health)

    async def _check(self) -> None:
        try:
            answers = await asyncio.gather(*(a.health.remote() for a in self.actors))
        except Exception as exc:
            self._health = {"engine": "degraded", "error": f"{type(exc).__name__}",
                            "partitions": len(self.actors)}  # fmt: skip
            return
        running = all(a.get("engine") == "running" for a in answers)
        self._health = {"engine": "running" if running else "degraded",
                        "partitions": answers}  # fmt: skip
