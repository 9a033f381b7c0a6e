"""`omniconsole serve`: the live service (SPEC §7).

HTTP ingest and webhooks (adapters.http.service) in front of the live engine
(omniconsole.engine.live), real channel adapters configured from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from omniconsole.adapters.channels.registry import build_adapters
from omniconsole.adapters.channels.settings import load_channel_settings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import HttpSettings, SettingsError
from omniconsole.adapters.http.service import build_app
from omniconsole.adapters.http.tracking_routes import PREFETCH_WINDOW
from omniconsole.adapters.store import StoreError, is_postgres_url, store_at
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.messages import Recipient
from omniconsole.domain.preferences import topic_views
from omniconsole.domain.templates import TemplateError, TemplateSet, load_templates
from omniconsole.domain.tracking import LinkTracker
from omniconsole.engine.live import LiveEngine


class ServeError(Exception):
    """The service cannot start; one line says why."""


def check_templates(config: EngineConfig, templates: TemplateSet) -> None:
    """Every step of every journey (and variant) renders on every channel it may use,
    or refuse to start."""
    probe = Recipient(customer="c-check", email="check@example.com", phone="+10000000000")
    two: dict[str, Any] = {"items": [{}, {}]}  # a digest's message lists items
    for journey in config.journeys:
        checks: list[tuple[str, tuple[Channel, ...], str | None, bool]] = [
            (s.name, s.channels, None, s.choice is not None and s.choice.digest is not None)
            for s in journey.steps
        ]
        for variant in journey.variants:
            for o in variant.steps:
                base = journey.step(o.step)
                digest = base.choice is not None and base.choice.digest is not None
                checks.append((o.step, o.channels or base.channels, o.template, digest))
        for step, channels, template, digest in checks:
            for channel in channels:
                try:
                    templates.render(journey.name, step, str(channel), probe, template=template)
                    if digest:
                        templates.render(
                            journey.name, step, str(channel), probe, None, two, template
                        )
                except TemplateError as exc:
                    raise ServeError(f"templates: {exc}") from None
                except (KeyError, ValueError) as exc:
                    raise ServeError(
                        f"templates: {journey.name}.{template or step} on {channel}: "
                        f"unknown variable {exc}"
                    ) from None


def link_tracker(config: EngineConfig, http: HttpSettings) -> LinkTracker | None:
    """The click and open tracking of `[tracking]`, or None (off, or no public URL)."""
    chan = config.policy.channel_policy
    tracking = None if chan is None else chan.tracking
    if tracking is None:
        return None
    if http.public_url is None:
        print(
            "omniconsole serve: tracking: OMNICONSOLE_PUBLIC_URL is not set, so links are "
            "sent as written (no click or open tracking)",
            file=sys.stderr,
            flush=True,
        )
        return None
    tracker = LinkTracker(
        http.public_url,
        http.link_secret or http.write_key,
        tracking.clicks,
        tracking.opens,
        tracking.channels,
    )
    what = " and ".join(
        w for w, on in (("clicks", tracking.clicks), ("opens", tracking.opens)) if on
    )
    print(
        f"omniconsole serve: tracking: {what or 'nothing'} on {', '.join(sorted(tracking.channels))}",
        file=sys.stderr,
        flush=True,
    )
    return tracker


def prepare(
    config_dir: Path | None, env: Mapping[str, str] | None = None
) -> tuple[EngineConfig, HttpSettings, TemplateSet]:
    """Load and check everything `serve` needs before it opens a port."""
    config = load_config(config_dir or shipped_config_dir())
    try:
        http = HttpSettings.from_env(env)
    except SettingsError as exc:
        raise ServeError(str(exc)) from None
    try:
        templates = load_templates(config.directory / "templates")
    except TemplateError as exc:
        raise ServeError(f"templates: {exc}") from None
    check_templates(config, templates)
    return config, http, templates


async def serve(
    config: EngineConfig,
    http: HttpSettings,
    templates: TemplateSet,
    db: Path | str,
    host: str,
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    click_window: float = PREFETCH_WINDOW,
) -> None:
    """Run until `stop` is set (or SIGINT/SIGTERM when `stop` is None)."""
    loop = asyncio.get_running_loop()
    try:
        settings = load_channel_settings(env)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    for line in [*settings.status_lines(), settings.delivery.describe()]:
        print(f"omniconsole serve: {line}", file=sys.stderr, flush=True)
    adapters = build_adapters(settings)
    metrics = Metrics()
    if not (isinstance(db, str) and is_postgres_url(db)):
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = store_at(db)
    except StoreError as exc:
        raise ServeError(str(exc)) from None
    tracker = link_tracker(config, http)
    # The adapters run on the delivery runner's own loop and threads, never this one:
    # however slow the providers, the HTTP front answers at its own pace.
    engine = LiveEngine(
        config,
        store,
        adapters.by_channel,
        templates,
        metrics,
        delivery=settings.delivery,
        not_configured=adapters.not_configured,
        tracker=tracker,
    )
    await asyncio.to_thread(engine.start)
    chan = config.policy.channel_policy
    topics = topic_views(chan.topics, config.journeys) if chan is not None else []
    app = build_app(
        engine,
        http,
        metrics,
        topics=topics,
        preference_source=engine,
        tracking=tracker is not None,
        click_window=click_window,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"omniconsole serve: listening on http://{host}:{port}", file=sys.stderr, flush=True)
        if stop is None:
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
        await asyncio.to_thread(engine.stop)  # closes the adapters on their own loop


def run_serve(args: argparse.Namespace) -> int:
    """The CLI entry point."""
    address, partitions = getattr(args, "ray", None), getattr(args, "partitions", None)
    if address is not None and getattr(args, "stop", False):
        from omniconsole.engine.cluster.serve import stop_cluster_partitions

        stop_cluster_partitions(args.db, address)
        return 0
    try:
        config, http, templates = prepare(args.config)
    except ServeError as exc:
        print(f"omniconsole: error: {exc}", file=sys.stderr)
        return 2
    try:
        if address is not None:  # a stateless ingest process of a cluster
            from omniconsole.engine.cluster.serve import serve_cluster

            asyncio.run(serve_cluster(config, http, templates, args.db, args.host, args.port,
                                      address=address, partitions=partitions))  # fmt: skip
            return 0
        asyncio.run(serve(config, http, templates, args.db, args.host, args.port))
    except ServeError as exc:
        print(f"omniconsole: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"omniconsole: error: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    return 0
