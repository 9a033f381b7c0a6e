"""`omniconsole serve --ray ADDRESS`: one stateless HTTP ingest process of a cluster.

Run as many as you like (a load balancer in front): each finds the store's live
partitions in the cluster — the first one starts them — and routes every event to its
customer's partition (`live.py`). `--stop` stops the partitions (each commits first).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson
from aiohttp import web

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import HttpSettings
from omniconsole.adapters.http.service import build_app
from omniconsole.adapters.store import store_at
from omniconsole.domain.config import EngineConfig
from omniconsole.domain.preferences import topic_views
from omniconsole.domain.templates import TemplateSet
from omniconsole.engine.cluster.connect import alive_nodes, connect
from omniconsole.engine.serve import link_tracker


def _say(line: str) -> None:
    print(f"omniconsole serve: {line}", file=sys.stderr, flush=True)


async def serve_cluster(
    config: EngineConfig,
    http: HttpSettings,
    templates: TemplateSet,
    db: str,
    host: str,
    port: int,
    *,
    address: str,
    partitions: int | None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve HTTP ingest in front of the store's live partitions until `stop` is set (or
    SIGINT/SIGTERM when `stop` is None). The partitions keep running afterwards."""
    from omniconsole.engine.cluster.live import ClusterIngest, live_partitions

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(connect, address)
    store = store_at(db)
    meta = {
        "mode": "serve",
        "status": "running",
        "config_dir": str(config.directory),
        "policy": orjson.dumps(config.policy.to_json()).decode(),
        "journeys": orjson.dumps([j.to_json() for j in config.journeys]).decode(),
    }
    count = partitions or len(alive_nodes())
    # the partitions sign tracked links with this process's secret; every ingest
    # process verifies them with its own (give them all the same environment)
    tracker = link_tracker(config, http)
    actors = await asyncio.to_thread(
        live_partitions, store, count, config, templates, meta, tracker
    )
    await asyncio.gather(*(a.health.remote() for a in actors))  # every one has started
    reader = await asyncio.to_thread(store.reader)
    ingest = ClusterIngest(actors, store, reader)
    await ingest.check()
    _say(f"{len(actors)} live partitions on the Ray cluster at {address}; store {store.describe()}")
    metrics = Metrics()
    chan = config.policy.channel_policy
    topics = topic_views(chan.topics, config.journeys) if chan is not None else []
    app = build_app(ingest, http, metrics, topics=topics, preference_source=ingest,
                    tracking=tracker is not None)  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        _say(f"listening on http://{host}:{port}")
        if stop is None:
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
        ingest.close()


def stop_cluster_partitions(db: str, address: str) -> int:
    """`serve --ray ADDRESS --stop`: stop the store's live partitions; how many."""
    from omniconsole.engine.cluster.live import stop_partitions

    connect(address)
    stopped = stop_partitions(store_at(db))
    _say(f"stopped {stopped} live partitions of {store_at(db).describe()}")
    return stopped
