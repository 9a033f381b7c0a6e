"""The HTTP front of `omniconsole serve`, on a real local server.

Ingest is driven by Segment's own Python client where it can be; Twilio webhooks are
signed with Twilio's own `RequestValidator`, exactly as Twilio signs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from segment.analytics import request as segment_request
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import APIError
from twilio.request_validator import RequestValidator
from yarl import URL

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import HttpSettings, IngestResult, SettingsError
from omniconsole.adapters.http.service import (
    INBOUND_PATH,
    STATUS_PATH,
    build_app,
    status_callback_url,
)
from omniconsole.domain.events import Event
from omniconsole.domain.unsubscribe import link_token

WRITE_KEY = "wk-test-123"
AUTH_TOKEN = "twilio-token-secret"
PUBLIC_URL = "https://hooks.example.test"
NOW = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


class MemorySink:
    """An in-memory IngestSink: records events, dedupes by messageId like the store."""

    def __init__(self, phones: dict[str, str | list[str]] | None = None) -> None:
        self.events: list[Event] = []
        self.calls: list[list[Event]] = []
        self.seen: set[str] = set()
        self.phones = {k: [v] if isinstance(v, str) else list(v) for k, v in (phones or {}).items()}
        self.lookups: list[str] = []
        self.fail = False
        self.accepting = True

    async def accept(self, events: list[Event]) -> IngestResult:
        if self.fail:
            raise RuntimeError("disk full")
        self.calls.append(list(events))
        duplicates: set[str] = set()
        dup_count = 0
        for event in events:
            if event.message_id is not None:
                if event.message_id in self.seen:
                    duplicates.add(event.message_id)
                    dup_count += 1
                    continue
                self.seen.add(event.message_id)
            self.events.append(event)
        return IngestResult(len(events) - dup_count, dup_count, frozenset(duplicates))

    async def customers_for_phone(self, phone: str) -> list[str]:
        self.lookups.append(phone)
        return list(self.phones.get(phone, []))

    def health(self) -> dict[str, Any]:
        return {
            "accepting": self.accepting,
            "channels": {"sms": {"configured": True}, "email": {"configured": False}},
        }


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink({"+14155550101": "c-1", "+14155550102": "c-2"})


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest_asyncio.fixture
async def server(sink: MemorySink, metrics: Metrics) -> AsyncIterator[TestServer]:
    settings = HttpSettings(
        write_key=WRITE_KEY, public_url=PUBLIC_URL, twilio_auth_token=AUTH_TOKEN
    )
    srv = TestServer(build_app(sink, settings, metrics, clock=lambda: NOW), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
def _close_segment_session() -> Iterator[None]:
    # Segment's client keeps one module-level requests Session; close its pooled
    # sockets after each test so none outlives the server it points at.
    yield
    segment_request._session.close()


def auth(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(key, "")}


def segment_client(server: TestServer, **kwargs: Any) -> SegmentClient:
    errors: list[Exception] = kwargs.pop("errors", [])
    return SegmentClient(
        write_key=kwargs.pop("write_key", WRITE_KEY),
        host=str(server.make_url("/")),
        max_retries=1,
        upload_interval=0.05,
        on_error=lambda exc, batch: errors.append(exc),
        **kwargs,
    )


async def drain(client: SegmentClient) -> None:
    """Wait until the client's consumer thread has posted everything, then stop it."""
    await asyncio.to_thread(client.flush)
    await asyncio.to_thread(client.join)


# ---- Segment ingest -----------------------------------------------------------


@pytest.mark.asyncio
async def test_segment_client_identify_and_track_arrive_as_events(
    server: TestServer, sink: MemorySink
) -> None:
    errors: list[Exception] = []
    client = segment_client(server, errors=errors)
    client.identify(
        "c-9",
        {"email": "ana@example.com", "phone": "+14155550109", "whatsapp_opt_in": True},
        context={"ip": "10.0.0.1"},
        timestamp=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        message_id="m-identify",
    )
    client.track(
        "c-9",
        "Order Completed",
        {"order_id": "o-1", "total": 12.5},
        timestamp=datetime(2026, 1, 5, 9, 0, 5, tzinfo=UTC),
        message_id="m-track",
    )
    await drain(client)

    assert errors == []
    identify, track = sink.events
    assert identify.kind == "identify"
    assert identify.customer == "c-9"
    assert identify.at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert identify.traits == {
        "email": "ana@example.com",
        "phone": "+14155550109",
        "whatsapp_opt_in": True,
    }
    assert identify.message_id == "m-identify"
    assert track.kind == "track"
    assert track.name == "Order Completed"
    assert track.properties == {"order_id": "o-1", "total": 12.5}
    assert track.at == datetime(2026, 1, 5, 9, 0, 5, tzinfo=UTC)
    assert track.message_id == "m-track"


@pytest.mark.asyncio
async def test_segment_client_gzip_bodies_are_accepted(
    server: TestServer, sink: MemorySink
) -> None:
    client = segment_client(server, sync_mode=True, gzip=True)
    await asyncio.to_thread(client.track, "c-1", "Logged In", message_id="m-gz")
    assert [e.message_id for e in sink.events] == ["m-gz"]


@pytest.mark.asyncio
async def test_segment_client_sees_a_partly_bad_batch_as_delivered(
    server: TestServer, sink: MemorySink
) -> None:
    errors: list[Exception] = []
    client = segment_client(server, errors=errors)
    client.identify("c-5", {"email": "x@example.com"}, message_id="m-1")
    client.page("c-5", name="Home", message_id="m-2")  # not a type SPEC accepts
    client.track("c-5", "Signed Up", message_id="m-3")
    await drain(client)

    assert errors == []
    assert [e.message_id for e in sink.events] == ["m-1", "m-3"]


@pytest.mark.asyncio
async def test_batch_accepts_good_items_and_reports_bad_ones_by_index(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "c-7", "traits": {"first_name": "Ana"}},
            {"type": "track", "userId": "c-7", "properties": {}},
            {"type": "page", "userId": "c-7", "name": "Home"},
            {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed"},
        ],
        "sentAt": "2026-01-05T10:00:00Z",
        "context": {"library": {"name": "curl"}},
    }
    async with http.post(server.make_url("/v1/batch"), json=body, headers=auth()) as resp:
        assert resp.status == 200
        payload = await resp.json()

    assert payload["success"] is True
    assert payload["accepted"] == 2
    assert [r["index"] for r in payload["rejected"]] == [1, 2]
    assert "'event'" in payload["rejected"][0]["reason"]
    assert "identify" in payload["rejected"][1]["reason"]
    assert "track" in payload["rejected"][1]["reason"]
    assert [(e.kind, e.customer) for e in sink.events] == [
        ("identify", "c-7"),
        ("track", "anon-1"),
    ]
    assert len(sink.calls) == 1  # one durable write for the whole batch


@pytest.mark.asyncio
async def test_anonymous_id_is_the_customer_and_timestamp_defaults_to_receipt(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    body = {"anonymousId": "anon-42", "event": "Product Viewed", "context": {"ip": "1.2.3.4"}}
    async with http.post(server.make_url("/v1/track"), json=body, headers=auth()) as resp:
        assert resp.status == 200
    (event,) = sink.events
    assert event.customer == "anon-42"
    assert event.at == NOW
    assert event.properties == {}


@pytest.mark.asyncio
async def test_identify_keeps_context_out_of_traits(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    body = {
        "userId": "c-3",
        "traits": {"timezone": "Europe/Paris"},
        "context": {"traits": {"email": "ctx@example.com"}, "library": {"name": "x"}},
        "integrations": {"All": True},
        "timestamp": "2026-01-05T10:00:00+01:00",
    }
    async with http.post(server.make_url("/v1/identify"), json=body, headers=auth()) as resp:
        assert resp.status == 200
    (event,) = sink.events
    assert event.traits == {"timezone": "Europe/Paris"}
    assert event.at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["wrong-key", None])
async def test_wrong_or_missing_write_key_is_401(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession, key: str | None
) -> None:
    body = {"userId": "c-1", "event": "Logged In"}
    async with http.post(
        server.make_url("/v1/track"), json=body, headers=auth(key) if key else None
    ) as resp:
        assert resp.status == 401
        payload = await resp.json()
    assert payload["success"] is False
    assert payload["code"] == "unauthorized"
    assert sink.events == []


@pytest.mark.asyncio
async def test_segment_client_gets_a_401_it_understands(server: TestServer) -> None:
    client = segment_client(server, sync_mode=True, write_key="not-the-key")
    with pytest.raises(APIError) as caught:
        await asyncio.to_thread(client.track, "c-1", "Logged In")
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"userId": "c-1"}, "'event'"),
        ("/v1/track", {"event": "Logged In"}, "'userId' or 'anonymousId'"),
        ("/v1/identify", {"userId": "c-1", "traits": ["x"]}, "'traits'"),
        ("/v1/identify", {"userId": "c-1", "timestamp": "yesterday"}, "'timestamp'"),
        ("/v1/track", {"userId": "c-1", "event": "X", "messageId": 7}, "'messageId'"),
        ("/v1/batch", {"events": []}, "'batch'"),
    ],
)
async def test_a_missing_or_bad_field_is_400_naming_it(
    server: TestServer,
    sink: MemorySink,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    async with http.post(server.make_url(path), json=body, headers=auth()) as resp:
        assert resp.status == 400
        payload = await resp.json()
    assert field in payload["message"]
    assert sink.events == []


@pytest.mark.asyncio
async def test_malformed_json_is_400(server: TestServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        server.make_url("/v1/track"),
        data=b'{"userId": "c-1", ',
        headers={"Content-Type": "application/json", **auth()},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == "invalid_json"


@pytest.mark.asyncio
async def test_an_event_over_32_kb_is_413(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    body = {"userId": "c-1", "event": "Big", "properties": {"blob": "x" * (33 * 1024)}}
    async with http.post(server.make_url("/v1/track"), json=body, headers=auth()) as resp:
        assert resp.status == 413
    assert sink.events == []


@pytest.mark.asyncio
async def test_a_batch_over_500_kb_is_413_and_a_big_item_is_rejected_alone(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    item = {"type": "track", "userId": "c-1", "event": "Big", "properties": {"b": "x" * 30_000}}
    async with http.post(
        server.make_url("/v1/batch"), json={"batch": [item] * 18}, headers=auth()
    ) as resp:
        assert resp.status == 413

    huge = {"type": "track", "userId": "c-1", "event": "Big", "properties": {"b": "x" * 33_000}}
    small = {"type": "track", "userId": "c-1", "event": "Small"}
    async with http.post(
        server.make_url("/v1/batch"), json={"batch": [small, huge]}, headers=auth()
    ) as resp:
        assert resp.status == 200
        payload = await resp.json()
    assert payload["accepted"] == 1
    assert payload["rejected"][0]["index"] == 1
    assert "32 KB" in payload["rejected"][0]["reason"]
    assert [e.name for e in sink.events] == ["Small"]


@pytest.mark.asyncio
async def test_message_id_is_passed_through_so_a_resend_is_not_applied_twice(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    body = {"userId": "c-1", "event": "Signed Up", "messageId": "m-once"}
    answers = []
    for _ in range(2):
        async with http.post(server.make_url("/v1/track"), json=body, headers=auth()) as resp:
            assert resp.status == 200
            answers.append(await resp.json())
    assert [c[0].message_id for c in sink.calls] == ["m-once", "m-once"]
    assert len(sink.events) == 1
    assert [a["duplicates"] for a in answers] == [0, 1]


@pytest.mark.asyncio
async def test_a_sink_failure_is_503_so_the_sender_retries(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    sink.fail = True
    body = {"userId": "c-1", "event": "Signed Up"}
    async with http.post(server.make_url("/v1/track"), json=body, headers=auth()) as resp:
        assert resp.status == 503


# ---- Twilio webhooks ----------------------------------------------------------


async def post_twilio(
    http: aiohttp.ClientSession,
    server: TestServer,
    public_url: str,
    form: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
) -> aiohttp.ClientResponse:
    """POST `form` to the path+query of `public_url`, signed as Twilio signs it."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(public_url, form)
    parts = urlsplit(public_url)
    target = URL(str(server.make_url("/")).rstrip("/") + parts.path, encoded=True)
    if parts.query:
        target = URL(f"{target}?{parts.query}", encoded=True)
    resp = await http.post(target, data=form, headers={"X-Twilio-Signature": signature})
    await resp.read()
    resp.release()
    return resp


def status_form(status: str, to: str = "+14155550101", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "MessageStatus": status,
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "From": "+14155550000",
        "To": to,
        "ApiVersion": "2010-04-01",
        **extra,
    }


@pytest.mark.asyncio
async def test_undelivered_status_becomes_message_failed_with_our_ids(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    url = status_callback_url(
        PUBLIC_URL,
        message_id="c-1:onboarding:nudge_day3:1",
        customer="c-1",
        channel="sms",
        journey="onboarding",
        step="nudge_day3",
    )
    resp = await post_twilio(
        http, server, url, status_form("undelivered", ErrorCode="30003", ErrorMessage="x")
    )
    assert resp.status == 200
    (event,) = sink.events
    assert event.kind == "track"
    assert event.name == "Message Failed"
    assert event.customer == "c-1"
    assert event.at == NOW
    assert event.properties["channel"] == "sms"
    assert event.properties["message_id"] == "c-1:onboarding:nudge_day3:1"
    assert event.properties["error_code"] == "30003"
    assert event.properties["journey"] == "onboarding"
    assert event.properties["step"] == "nudge_day3"


@pytest.mark.asyncio
async def test_delivered_whatsapp_status_without_ids_uses_the_number(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    form = status_form("delivered", to="whatsapp:+14155550102")
    resp = await post_twilio(http, server, PUBLIC_URL + STATUS_PATH, form)
    assert resp.status == 200
    (event,) = sink.events
    assert event.name == "Message Delivered"
    assert event.customer == "c-2"
    assert event.properties["channel"] == "whatsapp"
    assert sink.lookups == ["+14155550102"]


@pytest.mark.asyncio
async def test_a_repeated_status_callback_is_deduped_by_sid_and_status(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    url = status_callback_url(PUBLIC_URL, message_id="m-1", customer="c-1", channel="sms")
    for _ in range(2):
        await post_twilio(http, server, url, status_form("failed", ErrorCode="30008"))
    assert len(sink.events) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted", "read"])
async def test_other_statuses_are_204_and_ignored(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession, status: str
) -> None:
    url = status_callback_url(PUBLIC_URL, message_id="m-1", customer="c-1", channel="sms")
    resp = await post_twilio(http, server, url, status_form(status))
    assert resp.status == 204
    assert sink.events == []


@pytest.mark.asyncio
async def test_forged_or_missing_signatures_are_403(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    url = status_callback_url(PUBLIC_URL, message_id="m-1", customer="c-1", channel="sms")
    form = status_form("failed")
    forged = await post_twilio(http, server, url, form, token="not-the-token")
    # signed for one customer, replayed with another in the query string
    signed = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    tampered = url.replace("customer=c-1", "customer=c-2")
    retargeted = await post_twilio(http, server, tampered, form, signature=signed)
    async with http.post(server.make_url(INBOUND_PATH), data={"From": "+14155550101"}) as bare:
        pass
    assert [forged.status, retargeted.status, bare.status] == [403, 403, 403]
    assert sink.events == []


@pytest.mark.asyncio
async def test_inbound_stop_becomes_an_inbound_message_on_sms(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    form = {
        "MessageSid": "SMaaaa",
        "From": "+14155550101",
        "To": "+14155550000",
        "Body": "STOP",
        "NumMedia": "0",
    }
    resp = await post_twilio(http, server, PUBLIC_URL + INBOUND_PATH, form)
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    (event,) = sink.events
    assert event.name == "Inbound Message"
    assert event.customer == "c-1"
    assert event.properties["channel"] == "sms"
    assert event.properties["body"] == "STOP"


@pytest.mark.asyncio
async def test_inbound_whatsapp_is_on_the_whatsapp_channel(
    server: TestServer, sink: MemorySink, http: aiohttp.ClientSession
) -> None:
    form = {"MessageSid": "SMbbbb", "From": "whatsapp:+14155550102", "Body": "hi"}
    resp = await post_twilio(http, server, PUBLIC_URL + INBOUND_PATH, form)
    assert resp.status == 200
    (event,) = sink.events
    assert event.customer == "c-2"
    assert event.properties == {
        "channel": "whatsapp",
        "body": "hi",
        "provider_message_id": "SMbbbb",
    }


@pytest.mark.asyncio
async def test_inbound_from_an_unknown_number_is_answered_and_counted(
    server: TestServer, sink: MemorySink, metrics: Metrics, http: aiohttp.ClientSession
) -> None:
    form = {"MessageSid": "SMcccc", "From": "+19995550000", "Body": "who is this"}
    resp = await post_twilio(http, server, PUBLIC_URL + INBOUND_PATH, form)
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    assert sink.events == []
    assert sample(metrics, "omniconsole_webhooks_total", hook="inbound") == {"unknown_number": 1.0}


# ---- health and metrics -------------------------------------------------------


def sample(metrics: Metrics, name: str, **match: str) -> dict[str, float]:
    """Values of `name` whose labels include `match`, keyed by the remaining label."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items()):
                rest = [v for k, v in sorted(s.labels.items()) if k not in match]
                out[":".join(rest)] = s.value
    return out


@pytest.mark.asyncio
async def test_healthz_reports_ok_with_the_sinks_details(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/healthz")) as resp:
        assert resp.status == 200
        payload = await resp.json()
    assert payload["status"] == "ok"
    assert payload["channels"]["sms"] == {"configured": True}


@pytest.mark.asyncio
async def test_metrics_parse_as_prometheus_text_and_count_ingest(
    server: TestServer, metrics: Metrics, http: aiohttp.ClientSession
) -> None:
    batch = {
        "batch": [
            {"type": "identify", "userId": "c-1", "messageId": "a"},
            {"type": "track", "userId": "c-1", "event": "Logged In", "messageId": "b"},
            {"type": "track", "userId": "c-1", "event": "Logged In", "messageId": "b"},
            {"type": "screen", "userId": "c-1"},
        ]
    }
    async with http.post(server.make_url("/v1/batch"), json=batch, headers=auth()) as resp:
        assert resp.status == 200
    metrics.send_recorded("sms", "sent")
    metrics.adapter_latency("sms", 0.2)
    metrics.queue_depth("dispatch", 3)
    metrics.decision("quiet_hours")

    async with http.get(server.make_url("/metrics")) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()

    families = {f.name: f for f in text_string_to_metric_families(text)}
    ingested = {
        (s.labels["kind"], s.labels["outcome"]): s.value
        for s in families["omniconsole_events_ingested"].samples
        if s.name.endswith("_total")
    }
    assert ingested == {
        ("identify", "accepted"): 1.0,
        ("track", "accepted"): 1.0,
        ("track", "duplicate"): 1.0,
        ("screen", "rejected"): 1.0,
    }
    assert "omniconsole_adapter_latency_seconds" in families
    assert families["omniconsole_queue_depth"].samples[0].value == 3.0
    assert sample(metrics, "omniconsole_sends_total", channel="sms") == {"sent": 1.0}
    assert sample(metrics, "omniconsole_http_requests_total", route="/v1/batch") == {"200": 1.0}


# ---- settings -----------------------------------------------------------------


def test_settings_need_a_write_key() -> None:
    with pytest.raises(SettingsError, match="OMNICONSOLE_WRITE_KEY"):
        HttpSettings.from_env({"TWILIO_AUTH_TOKEN": "t"})


def test_settings_keep_secrets_out_of_repr() -> None:
    settings = HttpSettings.from_env(
        {
            "OMNICONSOLE_WRITE_KEY": "wk-secret",
            "OMNICONSOLE_PUBLIC_URL": "https://hooks.example.test/",
            "TWILIO_AUTH_TOKEN": "tok-secret",
        }
    )
    assert settings.public_url == "https://hooks.example.test"
    assert "secret" not in repr(settings)
    assert settings.webhooks_verifiable


def test_settings_reject_a_relative_public_url() -> None:
    with pytest.raises(SettingsError, match="OMNICONSOLE_PUBLIC_URL"):
        HttpSettings.from_env(
            {"OMNICONSOLE_WRITE_KEY": "k", "OMNICONSOLE_PUBLIC_URL": "hooks.example.test"}
        )


@pytest.mark.asyncio
async def test_webhooks_are_refused_when_no_auth_token_is_set(
    sink: MemorySink, metrics: Metrics, http: aiohttp.ClientSession
) -> None:
    settings = HttpSettings(write_key=WRITE_KEY, public_url=PUBLIC_URL)
    srv = TestServer(build_app(sink, settings, metrics), host="127.0.0.1")
    await srv.start_server()
    try:
        form = {"MessageSid": "SMdddd", "From": "+14155550101", "Body": "STOP"}
        resp = await post_twilio(http, srv, PUBLIC_URL + INBOUND_PATH, form)
    finally:
        await srv.close()
    assert resp.status == 403
    assert sink.events == []


@pytest.mark.asyncio
async def test_a_resent_track_is_not_counted_as_accepted(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    body = {"userId": "c-1", "event": "Logged In", "messageId": "dup-1"}
    answers = []
    for _ in range(2):
        async with http.post(server.make_url("/v1/track"), json=body, headers=auth()) as r:
            answers.append(await r.json())
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(1, 0), (0, 1)]
    assert len(sink.events) == 1


def unsubscribe_url(server: TestServer, token: str, message_id: str = "m-9") -> str:
    query = urlencode(
        {"customer": "c-1", "channel": "email", "message_id": message_id, "token": token}
    )
    return str(server.make_url(f"/unsubscribe?{query}"))


@pytest.mark.asyncio
async def test_one_click_unsubscribe_records_the_opt_out_once(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    url = unsubscribe_url(server, link_token(WRITE_KEY, "c-1", "email", "m-9"))
    async with http.get(url) as page:  # a link preview or a human opening the page
        assert page.status == 200 and '<form method="post"' in await page.text()
    assert sink.events == []
    for _ in range(2):  # RFC 8058 one-click POST, sent twice by an eager mail client
        async with http.post(url, data={"List-Unsubscribe": "One-Click"}) as response:
            assert response.status == 200
    [event] = sink.events
    assert (event.customer, event.name, event.properties["channel"]) == (
        "c-1",
        "Unsubscribed",
        "email",
    )


@pytest.mark.asyncio
async def test_a_forged_unsubscribe_link_is_403(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    forged = link_token("not-our-secret", "c-1", "email")
    async with http.post(unsubscribe_url(server, forged)) as response:
        assert response.status == 403
    assert sink.events == []


@pytest.mark.asyncio
async def test_healthz_is_503_whenever_the_sink_would_not_store_events(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    """A load balancer must stop routing here as soon as ingest would fail."""
    sink.accepting = False
    async with http.get(server.make_url("/healthz")) as resp:
        assert resp.status == 503
        assert (await resp.json())["status"] == "unavailable"


@pytest.mark.asyncio
async def test_an_unsubscribe_link_signs_its_message_id_so_it_cannot_be_stretched(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    """One link is one message's unsubscribe: the same token with any other message id is
    refused, so a leaked link cannot mint any number of `Unsubscribed` events."""
    token = link_token(WRITE_KEY, "c-1", "email", "m-9")
    for other in ("m-10", "m-9 ", "x"):
        async with http.post(unsubscribe_url(server, token, other)) as response:
            assert response.status == 403, other
    async with http.post(unsubscribe_url(server, token)) as response:
        assert response.status == 200
    assert [e.message_id for e in sink.events] == ["unsubscribe:c-1:email:m-9"]


@pytest.mark.asyncio
async def test_a_link_signed_before_message_ids_were_is_one_event_per_customer_and_channel(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    legacy = link_token(WRITE_KEY, "c-1", "email")  # mailed before the change: still works
    for message_id in ("m-1", "m-2", "m-3"):
        async with http.post(unsubscribe_url(server, legacy, message_id)) as response:
            assert response.status == 200
    assert [e.message_id for e in sink.events] == ["unsubscribe:c-1:email:"]


@pytest.mark.asyncio
async def test_an_inbound_stop_is_an_event_for_every_profile_holding_the_number(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    shared = MemorySink({"+14155550177": ["c-7", "c-8"]})
    app_server = TestServer(
        build_app(shared, HttpSettings(write_key=WRITE_KEY, public_url=PUBLIC_URL,
                                       twilio_auth_token=AUTH_TOKEN), Metrics(), clock=lambda: NOW),
        host="127.0.0.1",
    )  # fmt: skip
    await app_server.start_server()
    try:
        form = {"MessageSid": "SMshared", "From": "+14155550177", "Body": "STOP"}
        for _ in range(2):  # Twilio retries a webhook: the same message, the same events
            resp = await post_twilio(http, app_server, PUBLIC_URL + INBOUND_PATH, form)
            assert resp.status == 200
    finally:
        await app_server.close()
    assert [(e.customer, e.name, e.properties["body"]) for e in shared.events] == [
        ("c-7", "Inbound Message", "STOP"),
        ("c-8", "Inbound Message", "STOP"),
    ]
    assert [e.message_id for e in shared.events] == ["twilio:SMshared:c-7", "twilio:SMshared:c-8"]


@pytest.mark.asyncio
async def test_an_inbound_message_without_a_message_sid_is_400_and_not_applied(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink
) -> None:
    """Without it the event would have no id: a retry would apply it twice, and a replay
    of the stored log again."""
    form = {"From": "+14155550101", "Body": "STOP"}
    resp = await post_twilio(http, server, PUBLIC_URL + INBOUND_PATH, form)
    assert resp.status == 400
    assert "MessageSid" in (await resp.json())["message"]
    assert sink.events == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("gzip", b'{"userId": "c-1"}', 400),  # said gzip, sent plain
        ("x-custom", b'{"userId": "c-1"}', 415),  # used to be read as plain text
        ("gzip, deflate", b"", 415),
    ],
)
async def test_a_body_whose_encoding_cannot_be_read_is_a_4xx(
    server: TestServer, http: aiohttp.ClientSession, sink: MemorySink,
    encoding: str, body: bytes, status: int,
) -> None:  # fmt: skip
    headers = {**auth(), "Content-Encoding": encoding, "Content-Type": "application/json"}
    async with http.post(server.make_url("/v1/identify"), data=body, headers=headers) as resp:
        assert resp.status == status, await resp.text()
    assert sink.events == []
