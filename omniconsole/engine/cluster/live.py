"""`serve` at scale: live partitions as named Ray actors, stateless ingest in front.

    load balancer ─▶ omniconsole serve --ray … (any number: stateless HTTP ingest)
                        │ each event to its customer's partition (crc32 % N)
                        ▼
                 LivePartitionActor k (named, on a cluster node): the live engine of
                 one partition over its part of the PostgreSQL store (`LiveEngine`,
                 as `serve` runs it on one machine) — shard, governor, dispatchers,
                 store writer, committing before it answers; its delivery runner
                 sends from the part's outbox on a loop and threads of its own
                        │ sends paced by one token bucket per provider and channel
                        ▼ for the whole cluster (`rate_limit`)

Every guarantee of `serve` holds per partition, because each partition *is* that live
engine: nothing decided is lost to a provider outage (it waits in the outbox), an
ambiguous send is never repeated blindly, each outcome is committed at once on the
outbox's own connection, a customer whose events fail is quarantined. An ingest process
answers an HTTP request only once every partition its events went to has committed them
(the partition's group commit); events the door refuses are refused for their request
alone, before any partition sees them. An opt-out from a phone number reaches every
profile holding it, in whichever partition (`customers_for_phone` reads the whole
store). `/healthz` answers 503 whenever a partition does not accept: a failed request
says so at once, a check every `HEALTH_EVERY` seconds says when all are back.

An ingest process keeps no state: the partitions are found by name
(`live-<store>-p<k>`) and created by the first ingest process that finds them missing,
detached from it — so ingest processes come and go, and `omniconsole serve --ray …
--stop` stops the partitions.

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
import os
import threading
import time
import zlib
from collections import defaultdict
from typing import Any

import orjson
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from omniconsole.adapters.channels.registry import build_adapters
from omniconsole.adapters.channels.settings import load_channel_settings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestResult
from omniconsole.adapters.store.base import ProfileSource, Store, StoreReader
from omniconsole.adapters.store.parts import PARTS_KEY
from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.events import Event, EventError, check_event
from omniconsole.domain.templates import TemplateSet
from omniconsole.domain.tracking import LinkTracker
from omniconsole.engine.cluster.connect import alive_nodes
from omniconsole.engine.cluster.rate_limit import NAMESPACE, ClusterBucket, cluster_limiter
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
    thread, delivery loop, outbox thread and actors run beside them."""

    def __init__(self, index: int, config: EngineConfig, store: Store,
                 templates: TemplateSet, tracker: LinkTracker | None = None) -> None:  # fmt: skip
        """Runs on a worker thread: build the adapters from this node's environment, pace
        them with the cluster's buckets, and start the live engine from the part's last
        checkpoint (it takes up the sends its outbox still holds). `tracker` rewrites
        links as the ingest process that started the partitions verifies them."""
        self.index = index
        settings = load_channel_settings(os.environ)
        adapters = build_adapters(settings)
        self.engine = LiveEngine(
            config,
            store,
            adapters.by_channel,
            templates,
            Metrics(),
            delivery=settings.delivery,
            not_configured=adapters.not_configured,
            tracker=tracker,
        )
        #: the cluster's buckets this partition's sends are paced by
        self.buckets: list[ClusterBucket] = []

        def limiter(adapter: str, channel: Channel, rate: float, burst: float) -> ClusterBucket:
            self.buckets.append(cluster_limiter(adapter, channel, rate, burst))
            return self.buckets[-1]

        self.engine.runner.pace_with(limiter)
        self._stopped = False
        self._stop_lock = threading.Lock()
        self.engine.start()

    def submit(self, events: list[Event]) -> IngestResult:
        """Runs on a worker thread: the events, committed (group commit)."""
        return self.engine.submit(events).result()

    def health(self) -> dict[str, Any]:
        """Runs on a worker thread: the engine's /healthz details, and the send slots
        this partition took from each of the cluster's buckets."""
        paced = {bucket.provider: bucket.acquired for bucket in self.buckets}
        return {"partition": self.index, **self.engine.health(), "rate_limits": paced}

    def stop(self) -> None:
        """Runs on a worker thread: stop taking events, let sends in flight answer,
        commit their outcomes, close the adapters (once; a second call does nothing)."""
        with self._stop_lock:
            if not self._stopped:
                self._stopped = True
                self.engine.stop()


def merge_results(parts: list[tuple[list[int], IngestResult]]) -> IngestResult:
    """One request's result from its partitions' (each with the request's indexes of the
    events it took): counts added, id sets joined, refused events named by their index
    in the whole request."""
    merged: dict[str, Any] = {}
    for item in dataclasses.fields(IngestResult):
        values = [getattr(result, item.name) for _, result in parts]
        if item.name == "rejected":
            merged[item.name] = tuple(
                sorted((indexes[i], why) for indexes, result in parts for i, why in result.rejected)
            )
        elif all(isinstance(v, int) for v in values):
            merged[item.name] = sum(values)
        elif all(isinstance(v, frozenset) for v in values):
            merged[item.name] = frozenset().union(*values)
    return IngestResult(**merged)


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
    store: Store,
    count: int,
    config: EngineConfig,
    templates: TemplateSet,
    meta: dict[str, str],
    tracker: LinkTracker | None = None,
) -> list[Any]:
    """The store's live partitions: found by name, or created (detached, round robin
    over the live nodes with soft affinity) by whoever asks first. `count`, `meta` and
    `tracker` count only if the store has no partitions yet."""
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
            ).remote(k, config, store.part(k, count), templates, tracker)
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
    """The HTTP front's `IngestSink` over the cluster's live partitions. Its methods run
    on the HTTP server's event loop (the store lookups on a worker thread)."""

    def __init__(self, actors: list[Any], store: Store, reader: StoreReader) -> None:
        self.actors = actors
        self.store = store
        self.reader = reader
        self._reader_lock = threading.Lock()
        #: each part's profiles, opened on the preference page's first read of the part
        self._profiles: dict[int, ProfileSource] = {}
        self._health: dict[str, Any] = {"accepting": False, "engine": "starting",
                                        "partitions": len(actors)}  # fmt: skip
        self._checked = 0.0
        self._check_task: asyncio.Task[None] | None = None

    async def accept(self, events: list[Event]) -> IngestResult:
        """Each event to its customer's partition; return once all have committed. An
        event the door refuses is refused here, for its request alone; a partition's
        failure raises (the HTTP front answers 503, the sender retries) and marks this
        front not accepting until a check finds every partition accepting again."""
        rejected: list[tuple[int, str]] = []
        groups: dict[int, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            try:
                check_event(event)
            except EventError as exc:
                rejected.append((index, str(exc)))
                continue
            groups[partition_of(event.customer, len(self.actors))].append(index)
        refs = [self.actors[k].submit.remote([events[i] for i in indexes])
                for k, indexes in groups.items()]  # fmt: skip
        try:
            results: list[IngestResult] = await asyncio.gather(*refs)
        except Exception as exc:
            self._health = self._down(exc)
            raise
        parts = list(zip(groups.values(), results, strict=True))
        if rejected:  # as a part of its own: its events, and each refused by position
            refused = tuple((k, why) for k, (_, why) in enumerate(rejected))
            parts.append(([index for index, _ in rejected], IngestResult(0, rejected=refused)))
        return merge_results(parts)

    async def customers_for_phone(self, phone: str) -> list[str]:
        """Every customer whose profile holds this number, in any partition."""
        return await asyncio.to_thread(self._customers_for_phone, phone)

    def _customers_for_phone(self, phone: str) -> list[str]:
        with self._reader_lock:
            try:
                return self.reader.customers_for_phone(phone)
            except Exception:  # the connection was lost (a database restart): once more
                with contextlib.suppress(Exception):
                    self.reader.close()
                self.reader = self.store.reader()
                return self.reader.customers_for_phone(phone)

    async def channel_state(self, customer: str) -> ChannelState | None:
        """PreferenceSource: the customer's channel state as their partition last
        committed it (a partition commits every event before it answers `submit`)."""
        return await asyncio.to_thread(self._channel_state, customer)

    def _channel_state(self, customer: str) -> ChannelState | None:
        k = partition_of(customer, len(self.actors))
        with self._reader_lock:
            try:
                raw = self._part_profiles(k).load(customer)
            except Exception:  # the connection was lost (a database restart): once more
                with contextlib.suppress(Exception):
                    self._profiles.pop(k).close()
                raw = self._part_profiles(k).load(customer)
        return None if raw is None else ChannelState.from_json(raw.get("channel_state"))

    def _part_profiles(self, k: int) -> ProfileSource:
        if k not in self._profiles:
            self._profiles[k] = self.store.part(k, len(self.actors)).profiles()
        return self._profiles[k]

    def health(self) -> dict[str, Any]:
        """The last check of every partition (refreshed in the background every
        `HEALTH_EVERY` seconds); `accepting` only while every partition accepts."""
        running = self._check_task is not None and not self._check_task.done()
        if time.monotonic() - self._checked > HEALTH_EVERY and not running:
            self._checked = time.monotonic()
            self._check_task = asyncio.get_running_loop().create_task(self.check())
        return dict(self._health)

    async def check(self) -> None:
        """Ask every partition how it is (at most `HEALTH_EVERY` seconds each)."""
        try:
            async with asyncio.timeout(max(HEALTH_EVERY, 5.0)):
                answers = await asyncio.gather(*(a.health.remote() for a in self.actors))
        except Exception as exc:
            self._health = self._down(exc)
            return
        accepting = all(a.get("accepting") is True for a in answers)
        self._health = {
            "accepting": accepting,
            "engine": "running" if accepting else "degraded",
            "quarantined": sum(int(a.get("quarantined") or 0) for a in answers),
            "partitions": answers,
        }

    def close(self) -> None:
        """Release the store connections."""
        with self._reader_lock:
            sources: list[StoreReader | ProfileSource] = [self.reader, *self._profiles.values()]
            for source in sources:
                with contextlib.suppress(Exception):
                    source.close()
            self._profiles.clear()

    def _down(self, exc: BaseException) -> dict[str, Any]:
        return {"accepting": False, "engine": "degraded", "error": type(exc).__name__,
                "partitions": len(self.actors)}  # fmt: skip
