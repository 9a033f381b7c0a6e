"""No request stops the live service: each class of bad input is a clear 4xx naming what
is wrong, and afterwards the engine accepts, stores and answers /healthz 200 as before.

The engine is the real one (`LiveEngine` over SQLite, no channels configured: nothing
to deliver), behind the real HTTP front on a loopback server.
"""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import HttpSettings
from omniconsole.adapters.http.service import INBOUND_PATH, build_app
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.unsubscribe import link_token
from omniconsole.engine.live import LiveEngine

pytestmark = pytest.mark.faults

WRITE_KEY = "wk-poison"
AUTH_TOKEN = "twilio-token-poison"
PUBLIC_URL = "https://hooks.example.test"
STAMP = "2026-03-02T09:00:00Z"


@dataclass
class Poison:
    """One bad request: where it goes, what it carries, what must come back."""

    name: str
    path: str
    body: bytes
    status: int
    words: str  # the answer must say this (the field, or what is wrong)
    headers: dict[str, str] = field(default_factory=dict)


def identify(**fields: Any) -> dict[str, Any]:
    return {"userId": "p-1", "timestamp": STAMP, **fields}


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def raw_identify(traits_json: str) -> bytes:
    return ('{"userId":"p-1","timestamp":"' + STAMP + '","traits":' + traits_json + "}").encode()


POISON = [
    Poison("traits nested 300 deep", "/v1/identify", raw_identify(deep(300)), 400, "'traits'"),
    Poison("properties nested 40 deep", "/v1/track",
           ('{"userId":"p-1","event":"X","timestamp":"' + STAMP + '","properties":'
            + deep(40) + "}").encode(), 400, "'properties'"),
    Poison("NUL in userId", "/v1/identify", orjson.dumps(identify(userId="victim\x00x")), 400,
           "'userId'"),
    Poison("NUL in anonymousId", "/v1/identify",
           orjson.dumps({"anonymousId": "a\x00b", "timestamp": STAMP}), 400, "'anonymousId'"),
    Poison("NUL in messageId", "/v1/identify", orjson.dumps(identify(messageId="m\x00")), 400,
           "'messageId'"),
    Poison("NUL in the event name", "/v1/track",
           orjson.dumps(identify(event="Signed\x00Up")), 400, "'event'"),
    Poison("NUL in a phone trait", "/v1/identify",
           orjson.dumps(identify(traits={"phone": "+14155550101\x00"})), 400, "'traits.phone'"),
    Poison("newline in userId", "/v1/identify", orjson.dumps(identify(userId="a\r\nb")), 400,
           "'userId'"),
    Poison("userId of 10,000 characters", "/v1/identify",
           orjson.dumps(identify(userId="u" * 10_000)), 400, "'userId'"),
    Poison("timestamp before year 1 in UTC", "/v1/identify",
           orjson.dumps(identify(timestamp="0001-01-01T00:00:00+01:00")), 400, "'timestamp'"),
    Poison("timestamp after year 9999 in UTC", "/v1/identify",
           orjson.dumps(identify(timestamp="9999-12-31T23:59:59-01:00")), 400, "'timestamp'"),
    Poison("Signed Up a day before datetime's end", "/v1/track",
           orjson.dumps(identify(event="Signed Up", timestamp="9999-12-30T00:00:00Z")), 400,
           "'timestamp'"),
    Poison("a lone surrogate", "/v1/identify",
           b'{"userId":"p-1","timestamp":"' + STAMP.encode() + b'","traits":{"a":"\\ud800"}}',
           400, "malformed JSON"),
    Poison("a number beyond a double", "/v1/identify",
           b'{"userId":"p-1","timestamp":"' + STAMP.encode() + b'","traits":{"a":1e400}}',
           400, "malformed JSON"),
    Poison("gzip said, plain sent", "/v1/identify", orjson.dumps(identify()), 400, "decode",
           {"Content-Encoding": "gzip"}),
    Poison("an encoding nobody speaks", "/v1/identify", orjson.dumps(identify()), 415,
           "Content-Encoding", {"Content-Encoding": "x-rot13"}),
    # aiohttp refuses it before any handler: it knows br but has no decoder installed
    Poison("brotli, not supported", "/v1/batch", b"\x1b\x00", 400, "content-encoding",
           {"Content-Encoding": "br"}),
    Poison("two encodings", "/v1/identify", gzip.compress(orjson.dumps(identify())), 415,
           "Content-Encoding", {"Content-Encoding": "gzip, gzip"}),
    Poison("a gzip bomb", "/v1/identify",
           gzip.compress(orjson.dumps(identify(traits={"pad": "x" * 200_000}))), 413, "limit",
           {"Content-Encoding": "gzip"}),
    Poison("a batch that is not a list", "/v1/batch", b'{"batch": {"a": 1}}', 400, "'batch'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEngine]:
    db = tmp_path_factory.mktemp("poison") / "live.db"
    live = LiveEngine(
        load_config(shipped_config_dir()), SqliteStore(db), {}, None, Metrics(), tick=0.05
    )
    live.start()
    yield live
    live.stop()


@pytest_asyncio.fixture
async def server(engine: LiveEngine) -> AsyncIterator[TestServer]:
    settings = HttpSettings(
        write_key=WRITE_KEY, public_url=PUBLIC_URL, twilio_auth_token=AUTH_TOKEN, body_timeout=0.5
    )
    srv = TestServer(build_app(engine, settings, Metrics()), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


def auth() -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(WRITE_KEY, "")}


async def still_serving(server: TestServer, engine: LiveEngine, name: str) -> None:
    """After the poison: /healthz is 200 and a good event is taken and stored."""
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/healthz")) as health:
            assert health.status == 200, f"{name}: /healthz {health.status}"
        good = {"userId": "good", "timestamp": STAMP, "messageId": f"good-{name}"}
        async with http.post(server.make_url("/v1/identify"), json=good, headers=auth()) as r:
            assert r.status == 200, f"{name}: a good event after it got {r.status}"
            assert (await r.json())["accepted"] == 1
    assert engine.health()["accepting"]


@pytest.mark.asyncio
@pytest.mark.parametrize("poison", POISON, ids=[p.name for p in POISON])
async def test_each_class_of_poison_is_a_clear_4xx_and_the_engine_goes_on(
    server: TestServer, engine: LiveEngine, poison: Poison
) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.post(
            server.make_url(poison.path),
            data=poison.body,
            headers={"Content-Type": "application/json", **auth(), **poison.headers},
        ) as response,
    ):
        text = await response.text()
    assert response.status == poison.status, text
    assert poison.words in text, text
    await still_serving(server, engine, poison.name)


@pytest.mark.asyncio
async def test_a_batch_keeps_its_good_items_and_names_each_poisoned_one(
    server: TestServer, engine: LiveEngine
) -> None:
    """What used to be a 500 for the whole batch (orjson refuses 255 levels)."""
    items = (
        b'{"batch":[{"type":"identify","userId":"b-1","timestamp":"' + STAMP.encode() + b'",'
        b'"messageId":"b-ok-1"},{"type":"identify","userId":"b-2","timestamp":"'
        + STAMP.encode() + b'","traits":' + deep(300).encode() + b'},'
        b'{"type":"identify","userId":"b\\u0000","timestamp":"' + STAMP.encode() + b'"},'
        b'{"type":"track","userId":"b-3","event":"Signed Up","timestamp":"9999-12-30T00:00:00Z"},'
        b'{"type":"identify","userId":"b-4","timestamp":"' + STAMP.encode() + b'",'
        b'"messageId":"b-ok-2"}]}'
    )  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url("/v1/batch"), data=items, headers=auth()) as response,
    ):
        body = await response.json()
    assert response.status == 200, body
    assert body["accepted"] == 2
    assert [(r["index"], r["reason"].split("'")[1]) for r in body["rejected"]] == [
        (1, "traits"),
        (2, "userId"),
        (3, "timestamp"),
    ]
    await still_serving(server, engine, "batch")


@pytest.mark.asyncio
async def test_a_body_held_half_sent_is_408_not_a_handler_held_for_ever(
    server: TestServer, engine: LiveEngine
) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth()['Authorization']}\r\nContent-Length: 400\r\n\r\n"
    )
    writer.write(head.encode() + b'{"userId": "slow",')  # ... and then nothing
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)  # the body timeout is 0.5 s
    writer.close()
    await writer.wait_closed()
    assert status.split()[1] == b"408", status
    await still_serving(server, engine, "slow body")


@pytest.mark.asyncio
@pytest.mark.parametrize("zone", ["America", "Europe", "Etc", "Z" * 300])
async def test_a_time_zone_that_is_no_zone_changes_nothing_but_the_zone(
    server: TestServer, engine: LiveEngine, zone: str
) -> None:
    customer = f"tz-{len(zone)}-{zone[:3]}"
    batch = {
        "batch": [
            {"type": "identify", "userId": customer, "timestamp": STAMP,
             "traits": {"phone": "+14155550123", "timezone": zone}},
            {"type": "track", "userId": customer, "event": "Signed Up", "timestamp": STAMP},
        ]
    }  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url("/v1/batch"), json=batch, headers=auth()) as response,
    ):
        assert response.status == 200
        assert (await response.json())["accepted"] == 2
    await still_serving(server, engine, f"zone {zone[:10]}")
    assert engine.health()["quarantined"] == 0


async def post_inbound(server: TestServer, form: dict[str, str]) -> aiohttp.ClientResponse:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + INBOUND_PATH, form)
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            server.make_url(INBOUND_PATH), data=form, headers={"X-Twilio-Signature": signature}
        )
        await response.read()
        return response


@pytest.mark.asyncio
async def test_an_inbound_message_without_a_message_sid_is_400(
    server: TestServer, engine: LiveEngine
) -> None:
    """Twilio always sends one; without it a retry could not be told from a new message,
    and a replay of the log would apply it again."""
    response = await post_inbound(server, {"From": "+14155550123", "Body": "STOP"})
    assert response.status == 400
    await still_serving(server, engine, "inbound without sid")


@pytest.mark.asyncio
async def test_an_unsubscribe_link_is_one_message_and_cannot_be_stretched(
    server: TestServer, engine: LiveEngine
) -> None:
    def url(message_id: str, token: str) -> str:
        query = {"customer": "u-1", "channel": "email", "message_id": message_id, "token": token}
        return str(server.make_url(f"/unsubscribe?{urlencode(query)}"))

    token = link_token(WRITE_KEY, "u-1", "email", "m-1")
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # a replayed link is the same event
            async with http.post(url("m-1", token)) as response:
                assert response.status == 200
        for forged in ("m-2", "m-1x", ""):  # another message id with the same token
            async with http.post(url(forged, token)) as response:
                assert response.status == 403, forged
        async with http.post(url("m-1", "é" * 32)) as response:  # not even ASCII
            assert response.status == 403
    await still_serving(server, engine, "unsubscribe")


def test_every_acknowledged_event_is_stored_whole(engine: LiveEngine) -> None:
    """Run last in this module: the good events acknowledged above are all stored, and
    no stored id was cut at a NUL."""
    db = engine.store.describe()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids = [
            r[0] for r in conn.execute("SELECT message_id FROM events WHERE message_id IS NOT NULL")
        ]
        customers = {r[0] for r in conn.execute("SELECT customer FROM events")}
    finally:
        conn.close()
    goods = [i for i in ids if i.startswith("good-")]
    assert len(goods) == len(set(goods)) >= len(POISON)
    assert not any("\x00" in c or c in ("victim", "b", "a") for c in customers)
    assert datetime.now(UTC).year < 9000  # (the clock the service stamps with is sane)
