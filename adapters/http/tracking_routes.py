"""`GET /c/<token>` (click redirect) and `GET /o/<token>` (open pixel) of `serve`.

The tokens are minted by `omniconsole.domain.tracking` when a live send's links are
rewritten. A valid click token redirects (302) to its link at once and becomes a
`Message Clicked` event (properties `channel`, `message_id`, `link`, `link_index`); a
valid pixel token answers a 1x1 GIF and becomes `Message Opened`. A token not minted
here, or altered, is 404 — the redirect is never open to other targets.

- Replayed: each event's id is derived from the message, channel and link
  (`click:<message>:<channel>:<index>`, `open:<message>:<channel>`), so the same click
  twice is one event (the second a duplicate).
- Bots: mail scanners and link previews fetch every link of a message at once. Clicks
  are held for `window` seconds from the first of a message; when every link of a
  message with two or more links was fetched within it, none counts (metric
  `omniconsole_webhooks_total{hook="click",outcome="prefetch"}`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from aiohttp import web

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestSink
from omniconsole.domain.events import Event
from omniconsole.domain.tracking import CLICK_PATH, OPEN_PATH, Tracked, read

__all__ = ["ClickGate", "add_tracking_routes"]

log = logging.getLogger("omniconsole.http.tracking")

#: the smallest transparent GIF
PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: seconds within which fetching every link of a message is a scanner, not a person
PREFETCH_WINDOW: Final = 1.0

Clock = Callable[[], datetime]


@dataclass(slots=True)
class _Burst:
    """The clicks of one message within the window of its first."""

    count: int
    clicks: dict[int, tuple[Tracked, datetime]] = field(default_factory=dict)


class ClickGate:
    """Holds each message's clicks for `window` seconds, then records them — unless every
    link was fetched in that time (a scanner). Runs on the server's event loop."""

    def __init__(
        self, sink: IngestSink, metrics: Metrics, clock: Clock, window: float = PREFETCH_WINDOW
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self.window = window
        self._bursts: dict[tuple[str, str], _Burst] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def click(self, tracked: Tracked) -> None:
        """A click on a valid link; recorded once its message's window has passed."""
        key = (tracked.message_id, tracked.channel)
        burst = self._bursts.get(key)
        if burst is None:
            burst = self._bursts[key] = _Burst(tracked.count)
            task = asyncio.get_running_loop().create_task(self._after_window(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        burst.clicks.setdefault(tracked.index, (tracked, self.clock()))

    async def _after_window(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(self.window)
        await self._flush(key)

    async def _flush(self, key: tuple[str, str]) -> None:
        burst = self._bursts.pop(key, None)
        if burst is None:
            return
        if burst.count >= 2 and len(burst.clicks) >= burst.count:
            self.metrics.webhook_received("click", "prefetch")
            log.info("every link of %s fetched at once: a scanner, not counted", key[0])
            return
        events = [click_event(t, at) for t, at in burst.clicks.values()]
        try:
            await self.sink.accept(events)
        except Exception:  # the redirect was served; the click is what is lost
            log.exception("could not record %d click(s) of %s", len(events), key[0])
            self.metrics.webhook_received("click", "error")
            return
        self.metrics.webhook_received("click", "accepted")

    async def close(self) -> None:
        """Record what is held now (the service is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        for key in list(self._bursts):
            await self._flush(key)


def click_event(tracked: Tracked, at: datetime) -> Event:
    """The `Message Clicked` of one click."""
    return Event(
        kind="track",
        customer=tracked.customer,
        at=at,
        name="Message Clicked",
        properties={
            "channel": tracked.channel,
            "message_id": tracked.message_id,
            "link": tracked.url,
            "link_index": tracked.index,
            "source": "redirect",
        },
        message_id=f"click:{tracked.message_id}:{tracked.channel}:{tracked.index}",
    )


def open_event(tracked: Tracked, at: datetime) -> Event:
    """The `Message Opened` of one pixel fetch."""
    return Event(
        kind="track",
        customer=tracked.customer,
        at=at,
        name="Message Opened",
        properties={"channel": tracked.channel, "message_id": tracked.message_id,
                    "source": "pixel"},
        message_id=f"open:{tracked.message_id}:{tracked.channel}",
    )  # fmt: skip


def _not_valid() -> web.Response:
    return web.Response(status=404, text="This link is not valid.\n")


def add_tracking_routes(
    app: web.Application,
    sink: IngestSink,
    secret: str,
    metrics: Metrics,
    clock: Clock,
    *,
    window: float = PREFETCH_WINDOW,
) -> ClickGate:
    """Add `/c/{token}` and `/o/{token}` to `app`; its cleanup records held clicks."""
    gate = ClickGate(sink, metrics, clock, window)

    async def click(request: web.Request) -> web.Response:
        tracked = read(secret, request.match_info["token"])
        if tracked is None or tracked.kind != "click":
            metrics.webhook_received("click", "forbidden")
            return _not_valid()
        gate.click(tracked)
        return web.Response(status=302, headers={"Location": tracked.url,
                                                 "Cache-Control": "no-store"})  # fmt: skip

    async def opened(request: web.Request) -> web.Response:
        tracked = read(secret, request.match_info["token"].removesuffix(".gif"))
        if tracked is None or tracked.kind != "open":
            metrics.webhook_received("open", "forbidden")
            return _not_valid()
        try:
            await sink.accept([open_event(tracked, clock())])
            metrics.webhook_received("open", "accepted")
        except Exception:  # the image is served either way: a mail client does not retry
            log.exception("could not record an open of %s", tracked.message_id)
            metrics.webhook_received("open", "error")
        return web.Response(body=PIXEL, content_type="image/gif",
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    async def close_gate(_: web.Application) -> None:
        await gate.close()

    app.router.add_get(CLICK_PATH + "{token}", click)
    app.router.add_get(OPEN_PATH + "{token}", opened)
    app.on_cleanup.append(close_gate)
    return gate
