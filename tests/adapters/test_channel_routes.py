"""The routes channel intelligence adds to the HTTP front, on a real local server:
click redirects and the open pixel (`tracking_routes.py`) and the preference page
(`preferences.py`, also shown on the List-Unsubscribe page)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import HttpSettings, IngestResult
from omniconsole.adapters.http.preferences import preferences_query
from omniconsole.adapters.http.service import build_app
from omniconsole.adapters.http.tracking_routes import ClickGate, add_tracking_routes
from omniconsole.domain.channel_config import TopicDef
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Channel
from omniconsole.domain.events import Event
from omniconsole.domain.preferences import TopicView, event_choice
from omniconsole.domain.tracking import Tracked, mint
from omniconsole.domain.unsubscribe import link_token

SECRET = "wk-test-123"
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
E, P, S = Channel.EMAIL, Channel.PUSH, Channel.SMS


class Sink:
    """An in-memory IngestSink and PreferenceSource: dedupes by messageId like the
    store, applies topic events to the customer's state as the engine does, and signals
    each accepted batch."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seen: set[str] = set()
        self.states: dict[str, ChannelState] = {}
        self.arrived = asyncio.Event()

    async def accept(self, events: list[Event]) -> IngestResult:
        dups = 0
        for event in events:
            if event.message_id in self.seen:
                dups += 1
                continue
            if event.message_id is not None:
                self.seen.add(event.message_id)
            self.events.append(event)
            choice = event_choice(event.name or "", event.properties)
            if choice is not None:
                self.states.setdefault(event.customer, ChannelState()).choose(*choice)
        self.arrived.set()
        return IngestResult(len(events) - dups, dups)

    async def customers_for_phone(self, phone: str) -> list[str]:
        return []

    def health(self) -> dict[str, Any]:
        return {"accepting": True}

    async def channel_state(self, customer: str) -> ChannelState | None:
        return self.states.get(customer)

    async def wait(self, count: int) -> None:
        while len(self.events) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)


TOPICS = [
    TopicView(TopicDef("deals", "Price drops", frozenset()), (P, E), False),
    TopicView(TopicDef("recommendations", "Picks for you", frozenset({S})), (S, E), False),
    TopicView(TopicDef("account", "Receipts", frozenset()), (E, S), True),
]


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


# ---- clicks and opens ----


@pytest_asyncio.fixture
async def tracked() -> AsyncIterator[tuple[TestServer, Sink, ClickGate, Metrics]]:
    sink, metrics = Sink(), Metrics()
    app = web.Application()
    # a window no test waits out: `gate.close()` settles what is held, at once
    gate = add_tracking_routes(app, sink, SECRET, metrics, lambda: NOW, window=600)
    server = await serve(app)
    try:
        yield server, sink, gate, metrics
    finally:
        await server.close()


def click_url(server: TestServer, index: int, count: int, url: str, mid: str = "c-1:j:1:s") -> str:
    token = mint(SECRET, Tracked("click", mid, "email", "c-1", index, count, url))
    return str(server.make_url(f"/c/{token}"))


@pytest.mark.asyncio
async def test_a_click_redirects_at_once_and_is_recorded_as_message_clicked(
    tracked: tuple[TestServer, Sink, ClickGate, Metrics], http: aiohttp.ClientSession
) -> None:
    server, sink, gate, _ = tracked
    url = click_url(server, 0, 2, "https://shop.example.com/deals")
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "https://shop.example.com/deals"
    await gate.close()
    (event,) = sink.events
    assert (event.customer, event.name, event.at) == ("c-1", "Message Clicked", NOW)
    assert event.properties["channel"] == "email"
    assert event.properties["message_id"] == "c-1:j:1:s"
    assert event.properties["link"] == "https://shop.example.com/deals"


@pytest.mark.asyncio
async def test_the_same_click_twice_is_one_event(
    tracked: tuple[TestServer, Sink, ClickGate, Metrics], http: aiohttp.ClientSession
) -> None:
    server, sink, gate, _ = tracked
    url = click_url(server, 0, 2, "https://shop.example.com/deals")
    for _ in range(2):
        async with http.get(url, allow_redirects=False) as response:
            assert response.status == 302
        await gate.close()
    assert [e.name for e in sink.events] == ["Message Clicked"]


@pytest.mark.asyncio
async def test_a_scanner_fetching_every_link_at_once_is_not_counted(
    tracked: tuple[TestServer, Sink, ClickGate, Metrics], http: aiohttp.ClientSession
) -> None:
    server, sink, gate, metrics = tracked
    for index, link in enumerate(("https://a.example", "https://b.example", "https://c.example")):
        async with http.get(click_url(server, index, 3, link), allow_redirects=False) as r:
            assert r.status == 302, "a scanner still gets its redirect"
    await gate.close()
    assert sink.events == []
    assert b'hook="click",outcome="prefetch"' in metrics.render()


@pytest.mark.asyncio
async def test_a_forged_or_altered_click_token_is_refused_without_a_redirect(
    tracked: tuple[TestServer, Sink, ClickGate, Metrics], http: aiohttp.ClientSession
) -> None:
    server, sink, gate, _ = tracked
    forged = mint(
        "not-our-secret", Tracked("click", "m", "email", "c-1", 0, 1, "https://evil.example")
    )
    good = mint(SECRET, Tracked("click", "m", "email", "c-1", 0, 1, "https://good.example"))
    for token in (forged, good[:-3] + "abc", "x"):
        async with http.get(server.make_url(f"/c/{token}"), allow_redirects=False) as response:
            assert response.status == 404
            assert "Location" not in response.headers
    await gate.close()
    assert sink.events == []


@pytest.mark.asyncio
async def test_clicks_are_recorded_once_their_window_has_passed() -> None:
    sink, metrics = Sink(), Metrics()
    app = web.Application()
    add_tracking_routes(app, sink, SECRET, metrics, lambda: NOW, window=0.05)
    server = await serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(click_url(server, 1, 2, "https://b.example"),
                                allow_redirects=False) as response:  # fmt: skip
                assert response.status == 302
            await sink.wait(1)  # the gate records it on its own, after the window
    finally:
        await server.close()
    assert sink.events[0].properties["link_index"] == 1


@pytest.mark.asyncio
async def test_the_open_pixel_is_an_image_and_one_message_opened(
    tracked: tuple[TestServer, Sink, ClickGate, Metrics], http: aiohttp.ClientSession
) -> None:
    server, sink, _, _ = tracked
    token = mint(SECRET, Tracked("open", "c-1:j:1:s", "email", "c-1"))
    for _ in range(2):
        async with http.get(server.make_url(f"/o/{token}")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/gif"
            assert (await response.read()).startswith(b"GIF89a")
    assert [(e.name, e.message_id) for e in sink.events] == [
        ("Message Opened", "open:c-1:j:1:s:email")
    ]


# ---- the preference page ----


@pytest_asyncio.fixture
async def pages() -> AsyncIterator[tuple[TestServer, Sink]]:
    sink = Sink()
    settings = HttpSettings(write_key=SECRET, public_url="https://hooks.example.test")
    app = build_app(sink, settings, Metrics(), clock=lambda: NOW, topics=TOPICS,
                    preference_source=sink)  # fmt: skip
    server = await serve(app)
    try:
        yield server, sink
    finally:
        await server.close()


def checked(page: str) -> set[str]:
    return set(re.findall(r'name="([a-z_]+:[a-z_]+)" checked', page))


@pytest.mark.asyncio
async def test_the_preference_page_shows_each_topic_per_channel(
    pages: tuple[TestServer, Sink], http: aiohttp.ClientSession
) -> None:
    server, _ = pages
    async with http.get(server.make_url(f"/preferences?{preferences_query(SECRET, 'c-1')}")) as r:
        assert r.status == 200
        page = await r.text()
    assert "Price drops" in page and "Picks for you" in page
    assert checked(page) == {"deals:push", "deals:email", "recommendations:email",
                             "account:email", "account:sms"}  # fmt: skip
    assert "<fieldset disabled><legend>Receipts (always on)</legend>" in page


@pytest.mark.asyncio
async def test_saving_the_page_sends_one_event_per_change_and_shows_the_new_state(
    pages: tuple[TestServer, Sink], http: aiohttp.ClientSession
) -> None:
    server, sink = pages
    url = server.make_url(f"/preferences?{preferences_query(SECRET, 'c-1')}")
    form = {"deals:email": "on", "recommendations:sms": "on", "recommendations:email": "on",
            "account:email": "on"}  # the customer clears push for deals, turns sms on  # fmt: skip
    async with http.post(url, data=form) as response:
        assert response.status == 200
        page = await response.text()
    assert sorted(
        (e.name, e.properties["topic"], e.properties["channel"]) for e in sink.events
    ) == [
        ("Subscribed", "recommendations", "sms"),
        ("Unsubscribed", "deals", "push"),
    ]
    assert "Saved." in page
    assert {"deals:push"} & checked(page) == set() and "recommendations:sms" in checked(page)


@pytest.mark.asyncio
async def test_a_transactional_topic_cannot_be_turned_off_from_the_page(
    pages: tuple[TestServer, Sink], http: aiohttp.ClientSession
) -> None:
    server, sink = pages
    url = server.make_url(f"/preferences?{preferences_query(SECRET, 'c-1')}")
    async with http.post(url, data={"deals:push": "on", "deals:email": "on",
                                    "recommendations:email": "on"}) as response:  # fmt: skip
        assert response.status == 200
    assert all(e.properties["topic"] != "account" for e in sink.events)


@pytest.mark.asyncio
async def test_a_forged_preference_link_is_403(
    pages: tuple[TestServer, Sink], http: aiohttp.ClientSession
) -> None:
    server, sink = pages
    other = urlencode(
        {"customer": "c-2", "token": preferences_query(SECRET, "c-1").split("token=")[1]}
    )
    async with http.get(server.make_url(f"/preferences?{other}")) as response:
        assert response.status == 403
    async with http.post(server.make_url(f"/preferences?{other}"), data={}) as response:
        assert response.status == 403
    assert sink.events == []


@pytest.mark.asyncio
async def test_the_unsubscribe_page_grows_into_the_preference_centre_and_one_click_still_works(
    pages: tuple[TestServer, Sink], http: aiohttp.ClientSession
) -> None:
    server, sink = pages
    query = urlencode({"customer": "c-1", "channel": "email", "message_id": "m-9",
                       "token": link_token(SECRET, "c-1", "email", "m-9")})  # fmt: skip
    async with http.get(server.make_url(f"/unsubscribe?{query}")) as response:
        page = await response.text()
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "Or choose what you hear about" in page
    assert f'action="/preferences?{preferences_query(SECRET, "c-1")}"'.replace("&", "&amp;") in page
    async with http.post(server.make_url(f"/unsubscribe?{query}"),
                         data={"List-Unsubscribe": "One-Click"}) as response:  # fmt: skip
        assert response.status == 200
    (event,) = sink.events
    assert (event.name, event.properties["channel"]) == ("Unsubscribed", "email")
    assert "topic" not in event.properties
