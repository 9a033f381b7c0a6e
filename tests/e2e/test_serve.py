"""`omniconsole serve` end to end against real peers on loopback.

Segment-shaped HTTP ingest → engine → the welcome email reaches aiosmtpd; a fraud
alert becomes a Twilio request that Prism validates against Twilio's published spec;
an inbound STOP (signed like Twilio signs it) stops the next SMS to that customer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from fault_proxy import FaultProxy, twilio_error
from peers import LoopbackController, SmtpRecorder, free_port
from twilio.request_validator import RequestValidator

from omniconsole.domain.assignment import HELD_OUT_ARMS, Assigner
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.engine.serve import prepare, serve

WRITE_KEY = "wk-test"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-not-real"
EXAMPLE = shipped_config_dir() / "examples" / "holdouts"


class Arrivals(list[Any]):
    """A list that signals every append (the peers append what they receive)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Wait (on the peer's signal, not a fixed sleep) until `count` items arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self) < count:
            self.changed.clear()
            if len(self) >= count:
                break
            left = deadline - loop.time()
            if left <= 0 or not await asyncio.to_thread(self.changed.wait, left):
                raise AssertionError(f"expected {count} arrivals, got {len(self)}: {list(self)}")


@dataclass
class Service:
    url: str
    db: Path
    public_url: str
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        """Stop as an operator's SIGTERM would: sends in flight finish and are committed."""
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


@pytest_asyncio.fixture
async def service(
    tmp_path: Path,
    smtp_server: LoopbackController,
    smtp_recorder: SmtpRecorder,
    twilio_proxy: FaultProxy,
) -> AsyncIterator[Service]:
    async for running in start_service(tmp_path, smtp_server, smtp_recorder, twilio_proxy, None):
        yield running


@pytest_asyncio.fixture
async def example_service(
    tmp_path: Path,
    smtp_server: LoopbackController,
    smtp_recorder: SmtpRecorder,
    twilio_proxy: FaultProxy,
) -> AsyncIterator[Service]:
    """The service with the example config: control groups and a variant."""
    async for running in start_service(tmp_path, smtp_server, smtp_recorder, twilio_proxy, EXAMPLE):
        yield running


async def start_service(
    tmp_path: Path,
    smtp_server: LoopbackController,
    smtp_recorder: SmtpRecorder,
    twilio_proxy: FaultProxy,
    config_dir: Path | None,
) -> AsyncIterator[Service]:
    """`serve` with `config_dir` (None: the shipped config) on a free port."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        "OMNICONSOLE_WRITE_KEY": WRITE_KEY,
        "OMNICONSOLE_PUBLIC_URL": public,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_FROM": "hello@omni.example.com",
        "SMTP_STARTTLS": "false",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_FROM": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_proxy.url,
    }
    smtp_recorder.envelopes = Arrivals()
    twilio_proxy.seen = Arrivals()
    config, http, templates = prepare(config_dir, env)
    ready, stop = asyncio.Event(), asyncio.Event()
    db = tmp_path / "live.db"
    task = asyncio.create_task(
        serve(config, http, templates, db, "127.0.0.1", port, env=env, ready=ready, stop=stop)
    )
    await asyncio.wait_for(ready.wait(), 30)
    service = Service(public, db, public, stop, task)
    yield service
    if not task.done():
        await service.shutdown()


async def post_batch(session: aiohttp.ClientSession, url: str, batch: list[dict[str, Any]]) -> None:
    async with session.post(
        f"{url}/v1/batch",
        json={"batch": batch},
        auth=None,
        headers={"Authorization": basic(WRITE_KEY)},
    ) as response:
        assert response.status == 200, await response.text()


def basic(user: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


def track(customer: str, event: str, mid: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": customer, "event": event, "messageId": mid,
            "properties": props}  # fmt: skip


@pytest.mark.asyncio
async def test_welcome_email_sms_alert_and_stop(
    service: Service, smtp_recorder: SmtpRecorder, twilio_proxy: FaultProxy
) -> None:
    identify = {
        "type": "identify",
        "userId": "live-1",
        "messageId": "m-1",
        "traits": {"email": "ana@example.com", "phone": "+14155550101", "first_name": "Ana"},
        "context": {"library": {"name": "analytics-python"}},
    }
    async with aiohttp.ClientSession() as session:
        # sign-up → the welcome email, delivered by SMTP
        await post_batch(session, service.url, [identify, track("live-1", "Signed Up", "m-2")])
        await smtp_recorder.envelopes.wait_for(1)
        welcome = smtp_recorder.envelopes[0]
        assert welcome.rcpt_tos == ["ana@example.com"]
        assert b"Ana" in welcome.content

        # fraud → a transactional SMS that Twilio's own schema accepts (Prism: 201)
        await post_batch(session, service.url, [track("live-1", "Fraud Suspected", "m-3")])
        await twilio_proxy.seen.wait_for(1)
        sms = twilio_proxy.seen[0]
        assert sms.status == 201 and sms.forwarded
        assert sms.form["To"] == ["+14155550101"]

        # the customer answers STOP: a webhook signed exactly as Twilio signs it
        path = "/webhooks/twilio/inbound"
        form = {"From": "+14155550101", "To": "+15005550006", "Body": "  Stop ",
                "MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT_SID}  # fmt: skip
        signature = RequestValidator(AUTH_TOKEN).compute_signature(service.public_url + path, form)
        async with session.post(
            service.url + path, data=form, headers={"X-Twilio-Signature": signature}
        ) as response:
            assert response.status == 200
        async with session.post(
            service.url + path, data=form, headers={"X-Twilio-Signature": "forged"}
        ) as response:
            assert response.status == 403

        # the next fraud alert may not use SMS any more: it goes by email
        await post_batch(session, service.url, [track("live-1", "Fraud Suspected", "m-4")])
        await smtp_recorder.envelopes.wait_for(2)
        assert len(twilio_proxy.seen) == 1, "an SMS went out after STOP"

        async with session.get(f"{service.url}/metrics") as response:
            metrics = await response.text()
        assert 'channel="email"' in metrics

    await service.shutdown()
    ledger = ledger_lines(service.db)
    sent = [(ln["journey"], ln["step"], ln["channel"]) for ln in ledger if ln["outcome"] == "sent"]
    assert ("onboarding", "welcome", "email") in sent
    assert sent.count(("fraud_alert", "alert", "sms")) == 1
    assert sent.count(("fraud_alert", "alert", "email")) == 1


def ledger_lines(db: Path) -> list[dict[str, Any]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [orjson.loads(r[0]) for r in conn.execute("SELECT line FROM ledger ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_twilio_21610_records_the_opt_out_and_falls_back_to_email(
    service: Service, smtp_recorder: SmtpRecorder, twilio_proxy: FaultProxy
) -> None:
    """The provider says the recipient opted out: no more SMS, and the alert still arrives."""
    twilio_proxy.script(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    identify = {
        "type": "identify",
        "userId": "live-2",
        "messageId": "n-1",
        "traits": {"email": "bo@example.com", "phone": "+14155550102"},
    }
    async with aiohttp.ClientSession() as session:
        await post_batch(
            session, service.url, [identify, track("live-2", "Fraud Suspected", "n-2")]
        )
        await twilio_proxy.seen.wait_for(1)
        await smtp_recorder.envelopes.wait_for(1)  # the re-send went by email
        # and the opt-out sticks: the next alert does not even try SMS
        await post_batch(session, service.url, [track("live-2", "Fraud Suspected", "n-3")])
        await smtp_recorder.envelopes.wait_for(2)
    assert len(twilio_proxy.seen) == 1
    await service.shutdown()
    ledger = [
        (x["step"], x["channel"], x["outcome"], x["reason"]) for x in ledger_lines(service.db)
    ]
    assert ("alert", "sms", "failed", "adapter:21610") in ledger
    assert ledger.count(("alert", "email", "sent", None)) == 2
    # explain reads the live store: the SMS was decided, then the provider refused it
    from omniconsole.engine.explain import explain

    data = explain(service.db, "live-2")
    assert data["verified"], data["mismatch"]
    finals = {m["message_id"]: (m["final"]["outcome"], m["final"]["reason"])
              for m in data["messages"]}  # fmt: skip
    assert finals["live-2:fraud_alert:1:alert"] == ("failed", "adapter:21610")
    assert finals["live-2:fraud_alert:1:alert:fallback"] == ("sent", None)


@pytest.mark.asyncio
async def test_a_stop_from_a_shared_number_opts_out_every_profile_that_holds_it(
    service: Service, smtp_recorder: SmtpRecorder, twilio_proxy: FaultProxy
) -> None:
    """Two profiles share one phone (a household, a re-registered customer): a STOP from
    it is the address's opt-out, so neither profile is texted at that number again."""
    shared = "+14155550177"
    people = [
        {"type": "identify", "userId": who, "messageId": f"{who}-id",
         "traits": {"email": f"{who}@example.com", "phone": shared}}
        for who in ("house-1", "house-2")
    ]  # fmt: skip
    form = {"From": shared, "To": "+15005550006", "Body": "STOP",
            "MessageSid": "SM" + "7" * 32, "AccountSid": ACCOUNT_SID}  # fmt: skip
    path = "/webhooks/twilio/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(service.public_url + path, form)
    async with aiohttp.ClientSession() as session:
        await post_batch(session, service.url, people)
        async with session.post(
            service.url + path, data=form, headers={"X-Twilio-Signature": signature}
        ) as response:
            assert response.status == 200
        alerts = [track(who, "Fraud Suspected", f"{who}-fraud") for who in ("house-1", "house-2")]
        await post_batch(session, service.url, alerts)
        await smtp_recorder.envelopes.wait_for(2)  # both alerts went by email instead
    await service.shutdown()
    assert twilio_proxy.seen == [], "an SMS went to a number that said STOP"
    sent = sorted((x["customer"], x["channel"]) for x in ledger_lines(service.db)
                  if x["outcome"] == "sent")  # fmt: skip
    assert sent == [("house-1", "email"), ("house-2", "email")]


# ---- channel intelligence: tracked links, the preference page (config/examples/channels) ----

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"


@pytest_asyncio.fixture
async def channels_service(
    tmp_path: Path,
    smtp_server: LoopbackController,
    smtp_recorder: SmtpRecorder,
    twilio_proxy: FaultProxy,
) -> AsyncIterator[Service]:
    async for running in start_service(
        tmp_path, smtp_server, smtp_recorder, twilio_proxy, EXAMPLE_CONFIG
    ):
        yield running


def stored_events(db: Path, name: str) -> list[dict[str, Any]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT payload FROM events ORDER BY id").fetchall()
    finally:
        conn.close()
    events = [orjson.loads(r[0]) for r in rows]
    return [e for e in events if e.get("event") == name]


@pytest.mark.asyncio
async def test_tracked_links_and_the_preference_page_end_to_end(
    channels_service: Service, smtp_recorder: SmtpRecorder
) -> None:
    """The welcome email's link is a signed redirect that records the click, its pixel
    records the open, and its List-Unsubscribe link opens the preference page, where
    turning `deals` off on email withdraws consent for the next price drop."""
    import email
    import email.policy
    import re

    service = channels_service
    identify = {"type": "identify", "userId": "live-9", "messageId": "p-1",
                "traits": {"email": "cy@example.com", "first_name": "Cy"}}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        await post_batch(session, service.url, [identify, track("live-9", "Signed Up", "p-2")])
        await smtp_recorder.envelopes.wait_for(1)
        mail = email.message_from_bytes(
            smtp_recorder.envelopes[0].content, policy=email.policy.default
        )
        html_part = mail.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert "https://app.example.com/login" not in html
        (click,) = re.findall(rf'href="({re.escape(service.url)}/c/[\w-]+)"', html)
        (pixel,) = re.findall(rf'src="({re.escape(service.url)}/o/[\w-]+)"', html)

        async with session.get(pixel) as response:
            assert response.status == 200 and response.content_type == "image/gif"
        async with session.get(click, allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "https://app.example.com/login"
        async with session.get(click[:-4] + "AAAA", allow_redirects=False) as response:
            assert response.status == 404, "a forged token never redirects"

        unsubscribe = re.search(r"<(http[^>]+/unsubscribe\?[^>]+)>", mail["List-Unsubscribe"])
        assert unsubscribe is not None
        async with session.get(unsubscribe.group(1)) as response:
            page = await response.text()
        assert 'value="One-Click"' in page and "Price drops" in page
        assert "Receipts and security alerts (always on)" in page
        action = re.search(r'<form method="post" action="(/preferences\?[^"]+)"', page)
        assert action is not None
        kept = {name: "on" for name in re.findall(r'name="([a-z_]+:[a-z_]+)" checked', page)}
        del kept["deals:email"]
        async with session.post(
            service.url + action.group(1).replace("&amp;", "&"), data=kept
        ) as response:
            assert response.status == 200
            assert "Saved." in await response.text()

        await post_batch(session, service.url, [track("live-9", "Price Dropped", "p-3")])
    await service.shutdown()

    opened = stored_events(service.db, "Message Opened")
    clicked = stored_events(service.db, "Message Clicked")
    welcome = "live-9:onboarding:1:welcome"
    assert [(e["properties"]["message_id"], e["properties"]["channel"]) for e in opened] == [
        (welcome, "email")
    ]
    assert [(e["properties"]["message_id"], e["properties"]["link"]) for e in clicked] == [
        (welcome, "https://app.example.com/login")
    ]
    (topic_off,) = stored_events(service.db, "Unsubscribed")
    assert topic_off["properties"] == {"topic": "deals", "channel": "email",
                                       "source": "preference-centre"}  # fmt: skip
    (drop,) = [x for x in ledger_lines(service.db) if x["journey"] == "price_drop"]
    assert (drop["outcome"], drop["reason"]) == ("suppressed", "consent:topic:deals")


# ---- control groups (config/examples/…): held out live as in a replay ----


def held_out_and_treated() -> tuple[str, str]:
    """A customer in onboarding's control group and one it treats, by the engine's own
    assignment with the example config."""
    assigner = Assigner(load_config(EXAMPLE))
    onboarding = assigner.journeys["onboarding"]
    arms = {c: assigner.arm_name(c, onboarding) for c in (f"live-{n}" for n in range(200))}
    held = next(c for c, arm in arms.items() if arm in HELD_OUT_ARMS)
    treated = next(c for c, arm in arms.items() if arm not in HELD_OUT_ARMS)
    return held, treated


@pytest.mark.asyncio
async def test_serve_holds_out_the_control_group_as_a_replay_does(
    example_service: Service, smtp_recorder: SmtpRecorder
) -> None:
    held, treated = held_out_and_treated()

    def signup(customer: str) -> list[dict[str, Any]]:
        return [
            {"type": "identify", "userId": customer, "messageId": f"{customer}-id",
             "traits": {"email": f"{customer}@example.com"}},
            track(customer, "Signed Up", f"{customer}-su"),
        ]  # fmt: skip

    async with aiohttp.ClientSession() as session:
        await post_batch(session, example_service.url, signup(held))
        await post_batch(session, example_service.url, signup(treated))
        await smtp_recorder.envelopes.wait_for(1)
    await example_service.shutdown()  # sends in flight finish and are committed
    assert [e.rcpt_tos for e in smtp_recorder.envelopes] == [[f"{treated}@example.com"]]
    welcome = {ln["customer"]: ln for ln in ledger_lines(example_service.db)
               if ln["step"] == "welcome"}  # fmt: skip
    assert welcome[treated]["outcome"] == "sent"
    assert welcome[held]["outcome"] == "held_out"
    assert welcome[held]["reason"] in HELD_OUT_ARMS
