"""Providers on a bad day, against real peers: nothing decided is lost, nothing is sent
twice.

SMTP down, Twilio answering 503 or 429, refusing connections or slow: the sends wait in
the outbox (`retrying`), and each goes exactly once when the provider is back. A timeout
after the request left is reconciled before any second attempt: Twilio is asked (its
Messages list, which the fault proxy keeps for what it forwarded), SMTP cannot be
asked and the email is `unconfirmed`, never repeated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session
from fault_proxy import FaultProxy, twilio_error
from live_world import (
    Arrivals,
    Service,
    customer,
    finals,
    post_batch,
    start_service,
    track,
    wait_health,
    waiting,
)
from peers import LoopbackController, SmtpRecorder

pytestmark = pytest.mark.faults


class SlowSmtp(SmtpRecorder):
    """An SMTP server that keeps the message at the end of DATA but answers it
    `data_delay` seconds late: past the client's timeout, the send is ambiguous."""

    data_delay: float = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)  # it has the message
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # ... and its answer comes late
        return reply


@pytest.fixture
def smtp_recorder() -> SlowSmtp:
    recorder = SlowSmtp()
    recorder.envelopes = Arrivals()
    return recorder


class SmtpPeer:
    """aiosmtpd that can go down and come back on the same port (a Controller cannot
    be started twice)."""

    def __init__(self, handler: SmtpRecorder) -> None:
        self.handler = handler
        self.port = 0
        self._controller: LoopbackController | None = None

    def start(self) -> None:
        controller = LoopbackController(self.handler, hostname="127.0.0.1", port=self.port)
        controller.start()
        self.port, self._controller = controller.port, controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server(smtp_recorder: SlowSmtp) -> Iterator[SmtpPeer]:
    peer = SmtpPeer(smtp_recorder)
    peer.start()
    yield peer
    peer.stop()


@pytest_asyncio.fixture
async def world(
    tmp_path: Path, smtp_server: SmtpPeer, twilio_proxy: FaultProxy
) -> AsyncIterator[Service]:
    twilio_proxy.seen = Arrivals()
    twilio_proxy.created = Arrivals()
    service = await start_service(tmp_path / "live.db", smtp_server, twilio_proxy)
    yield service
    if not service.task.done():
        await service.shutdown()


def message_ids(proxy: FaultProxy) -> Counter[str]:
    """Our message id of every message Twilio accepted (it rides on the status callback)."""
    ids: Counter[str] = Counter()
    for message in proxy.seen:
        if message.method == "POST" and message.forwarded and message.status == 201:
            callback = message.form["StatusCallback"][0]
            ids[parse_qs(urlsplit(callback).query)["message_id"][0]] += 1
    return ids


@pytest.mark.asyncio
async def test_an_smtp_outage_loses_no_email_and_each_goes_once_when_it_is_back(
    world: Service, smtp_server: SmtpPeer, smtp_recorder: SlowSmtp
) -> None:
    smtp_server.stop()  # down: connections refused
    people = [f"mail-{i}" for i in range(8)]
    await post_batch(world.url, [customer(c, email=f"{c}@example.com") for c in people])
    await post_batch(world.url, [track(c, "Order Completed", f"{c}:o") for c in people])
    await wait_health(
        world.url,
        lambda h: waiting(h, "email") == len(people) and h["channels"]["email"] == "circuit_open",
        "the receipts did not wait in the outbox behind an open circuit",
    )
    smtp_server.start()  # back, on the same port
    await smtp_recorder.envelopes.wait_until(lambda e: len(e) >= len(people), "receipts lost")
    await world.shutdown()
    assert finals(world.db) == [(c, "email", "sent", None) for c in people]
    ids = Counter(
        e.content.split(b"Message-ID: ")[1].split(b"\r\n")[0] for e in smtp_recorder.envelopes
    )
    assert sorted(ids.values()) == [1] * len(people)  # each exactly once


async def twilio_503(proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    proxy.fail_always(twilio_error(503, 20503, "Service Unavailable"))
    return _forward(proxy)


async def twilio_429(proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    proxy.fail_always(twilio_error(429, 20429, "Too Many Requests"))
    return _forward(proxy)


async def twilio_refusing(proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    await proxy.go_down()
    return proxy.come_back


async def twilio_slow(proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    proxy.slow(0.5)  # slow but within the 2 s timeout

    async def on_time() -> None:
        proxy.slow(0)

    return on_time


def _forward(proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    async def recover() -> None:
        proxy.fail_always(None)

    return recover


@pytest.mark.asyncio
@pytest.mark.parametrize("outage", [twilio_503, twilio_429, twilio_refusing, twilio_slow])
async def test_a_twilio_outage_loses_no_sms_and_each_goes_once_when_it_is_back(
    world: Service,
    twilio_proxy: FaultProxy,
    outage: Callable[[FaultProxy], Awaitable[Callable[[], Awaitable[None]]]],
) -> None:
    """Phone-only customers: a fraud alert has no other channel to fall back to."""
    people = [f"sms-{i}" for i in range(6)]
    recover = await outage(twilio_proxy)
    await post_batch(
        world.url, [customer(c, phone=f"+1415555{i:04d}") for i, c in enumerate(people)]
    )
    await post_batch(world.url, [track(c, "Fraud Suspected", f"{c}:f") for c in people])
    if outage is not twilio_slow:
        await wait_health(
            world.url,
            lambda h: (
                waiting(h, "sms") + waiting(h, "sms", "pending") == len(people)
                and waiting(h, "sms") > 0
            ),
            "the alerts did not wait in the outbox",
        )
    await recover()
    await twilio_proxy.created.wait_until(lambda c: len(c) >= len(people), "alerts lost")
    await world.shutdown()
    assert finals(world.db) == [(c, "sms", "sent", None) for c in people]
    assert sorted(message_ids(twilio_proxy).values()) == [1] * len(people)


@pytest.mark.asyncio
async def test_a_twilio_timeout_after_accept_is_reconciled_not_sent_again(
    world: Service, twilio_proxy: FaultProxy, smtp_recorder: SlowSmtp
) -> None:
    """Twilio took the alert but its answer came after our 2 s timeout: the Messages list
    shows it, so it is `sent` — once — and no email fallback goes out."""
    twilio_proxy.stall(4.0)
    await post_batch(world.url, [customer("amb-1", phone="+14155550111", email="amb@example.com"),
                                 track("amb-1", "Fraud Suspected", "amb-1:f")])  # fmt: skip
    await twilio_proxy.seen.wait_until(
        lambda seen: any(s.method == "GET" for s in seen), "Twilio was never asked"
    )
    await world.shutdown()
    assert message_ids(twilio_proxy) == Counter({"amb-1:fraud_alert:1:alert": 1})
    assert finals(world.db) == [("amb-1", "sms", "sent", None)]
    assert len(smtp_recorder.envelopes) == 0


@pytest.mark.asyncio
async def test_a_twilio_send_lost_on_the_way_is_asked_about_then_sent_once(
    world: Service, twilio_proxy: FaultProxy
) -> None:
    """The connection dropped after the request left and Twilio never got it: the list
    does not show it, so — and only then — it is sent again."""
    twilio_proxy.drop(1)
    await post_batch(world.url, [customer("drop-1", phone="+14155550112"),
                                 track("drop-1", "Fraud Suspected", "drop-1:f")])  # fmt: skip
    await twilio_proxy.created.wait_until(lambda c: len(c) == 1, "the alert was never sent")
    await world.shutdown()
    methods = [s.method for s in twilio_proxy.seen]
    assert methods == ["POST", "GET", "POST"]  # dropped, asked, sent
    assert message_ids(twilio_proxy) == Counter({"drop-1:fraud_alert:1:alert": 1})
    assert finals(world.db) == [("drop-1", "sms", "sent", None)]


@pytest.mark.asyncio
async def test_an_smtp_timeout_after_data_is_unconfirmed_never_repeated(
    world: Service, smtp_recorder: SlowSmtp, twilio_proxy: FaultProxy
) -> None:
    """The relay had the receipt but answered the end of DATA after our timeout: SMTP
    cannot be asked, so the email is not sent again; the receipt falls back to SMS."""
    smtp_recorder.data_delay = 3.0
    await post_batch(world.url, [customer("slow-1", email="slow@example.com", phone="+14155550113"),
                                 track("slow-1", "Order Completed", "slow-1:o")])  # fmt: skip
    await twilio_proxy.created.wait_until(lambda c: len(c) == 1, "no SMS fallback")
    await smtp_recorder.envelopes.wait_until(lambda e: len(e) == 1, "the relay never had it")
    await world.shutdown()
    assert len(smtp_recorder.envelopes) == 1
    assert finals(world.db) == [
        ("slow-1", "email", "failed", "adapter:unconfirmed"),
        ("slow-1", "sms", "sent", None),
    ]
