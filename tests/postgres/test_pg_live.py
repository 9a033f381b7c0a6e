"""The live service's guarantees hold on PostgreSQL as on SQLite: the outbox keeps every
decided send through a crash or an outage, never repeats an ambiguous one blindly,
commits each outcome at once; a customer whose events fail is quarantined, and stays so.

The same scenarios as `actors/test_live_outbox.py`, on a real PostgreSQL server; and
what only a shared database needs: a partition taken over by another writer sends no
more from its outbox.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from live_fakes import NOW, QUICK, AskableProvider, MovableClock, Provider, order

from omniconsole.adapters.channels.fake import FakeChannelAdapter, ambiguous, permanent
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.store import store_at
from omniconsole.adapters.store.pg_schema import StoreFenced
from omniconsole.adapters.store.postgres import PostgresStore
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.messages import DeliveryResult, OutboundMessage
from omniconsole.domain.records import OutboxUpdate
from omniconsole.engine.live import LiveEngine

pytestmark = pytest.mark.postgres


def live(
    url: str,
    adapters: dict[Channel, FakeChannelAdapter],
    clock: Any = None,
    config: EngineConfig | None = None,
) -> LiveEngine:
    engine = LiveEngine(
        config or load_config(shipped_config_dir()),
        store_at(url),
        adapters,
        None,
        Metrics(),
        delivery=QUICK,
        clock=clock or MovableClock(),
        tick=0.05,
        poll=0.05,
    )
    engine.start()
    return engine


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, options="-c search_path=omniconsole") as conn:
        return list(conn.execute(sql))


def outcomes(url: str) -> list[tuple[str, str, str, str | None]]:
    lines = [orjson.loads(r[0]) for r in query(url, "SELECT line FROM ledger ORDER BY id")]
    return [(x["customer"], x["channel"], x["outcome"], x["reason"]) for x in lines]


def outbox(url: str) -> list[tuple[str, str]]:
    return [(str(m), str(s)) for m, s in query(url, "SELECT message_id, status FROM outbox")]


class Stuck(Provider):
    """A provider call that never answers: the process dies while it is in flight."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        with self.changed:
            self.attempts.append(message)
            self.changed.notify_all()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_a_send_in_flight_at_a_crash_goes_once_after_the_restart(pg_url: str) -> None:
    stuck = Stuck()
    first = live(pg_url, {Channel.EMAIL: stuck})
    events = order("c-1", 1, email="ana@example.com")
    assert first.submit(events).result(10).accepted == 2  # committed with its outbox row
    stuck.wait(lambda: len(stuck.attempts) == 1, "the receipt was never tried")
    first.stop(0.0)  # the process "dies" with the send in flight
    [(message_id, status)] = outbox(pg_url)
    assert status == "pending" and outcomes(pg_url) == []

    working = Provider()
    second = live(pg_url, {Channel.EMAIL: working})
    working.wait(lambda: len(working.sent) == 1, "the waiting receipt was lost")
    repeat = second.submit(events).result(10)  # the client retries: nothing twice
    second.stop()
    assert (repeat.accepted, repeat.duplicates) == (0, 2)
    assert [m.message_id for m in working.sent] == [message_id]
    assert outcomes(pg_url) == [("c-1", "email", "sent", None)]
    assert outbox(pg_url) == [(message_id, "sent")]
    assert query(pg_url, "SELECT settled FROM outbox") == [(1,)]


def test_a_provider_outage_loses_nothing_the_sends_wait_and_go_when_it_recovers(
    pg_url: str,
) -> None:
    email = Provider(retry=RetryPolicy(attempts=2, base_delay=0), failure_threshold=3,
                     reset_timeout=0.1)  # fmt: skip
    email.outage = "connection"
    engine = live(pg_url, {Channel.EMAIL: email})
    customers = [f"c-{i}" for i in range(6)]
    for i, customer in enumerate(customers):
        engine.submit(order(customer, i, email=f"{customer}@example.com")).result(10)
    email.wait(lambda: email.health().get(Channel.EMAIL) == "circuit_open", "breaker never opened")
    assert email.sent == []
    waiting = outbox(pg_url)  # every decided send waits in the store, none is lost
    assert len(waiting) == 6 and {s for _, s in waiting} <= {"pending", "retrying"}
    email.outage = None
    email.wait(lambda: len(email.sent) == 6, "the sends waiting in the outbox never went")
    engine.stop()
    assert sorted(outcomes(pg_url)) == [(c, "email", "sent", None) for c in customers]
    assert sorted(m.recipient.customer for m in email.sent) == customers
    assert {status for _, status in outbox(pg_url)} == {"sent"}


def test_a_send_still_waiting_at_its_maximum_age_expires_and_falls_back(pg_url: str) -> None:
    clock = MovableClock()
    email, sms = Provider(reset_timeout=0.1), Provider()
    email.outage = "http_503"
    engine = live(pg_url, {Channel.EMAIL: email, Channel.SMS: sms}, clock)
    engine.submit(order("c-1", 1, email="ana@example.com", phone="+14155550101")).result(10)
    email.wait(lambda: len(email.attempts) >= 1, "the receipt was never tried")
    clock.jump = timedelta(hours=72, seconds=1)
    sms.wait(lambda: len(sms.sent) == 1, "the expired receipt did not fall back to SMS")
    engine.stop()
    assert outcomes(pg_url) == [
        ("c-1", "email", "failed", "adapter:expired"),
        ("c-1", "sms", "sent", None),
    ]


@pytest.mark.parametrize("landed", [True, False])
def test_an_ambiguous_send_is_reconciled_before_any_second_attempt(
    pg_url: str, landed: bool
) -> None:
    email = AskableProvider()
    email.script(ambiguous(landed=landed))
    engine = live(pg_url, {Channel.EMAIL: email})
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    email.wait(lambda: len(email.questions) == 1, "the provider was never asked")
    if not landed:
        email.wait(lambda: len(email.sent) == 1, "the receipt was not sent again")
    engine.stop()
    assert len(email.received) == 1  # exactly once at the provider
    assert len(email.attempts) == (1 if landed else 2)
    assert outcomes(pg_url) == [("c-1", "email", "sent", None)]


def test_an_ambiguous_send_that_cannot_be_asked_is_unconfirmed_and_never_repeated(
    pg_url: str,
) -> None:
    email, sms = Provider(), Provider()
    email.script(ambiguous(landed=True))
    engine = live(pg_url, {Channel.EMAIL: email, Channel.SMS: sms})
    engine.submit(order("c-1", 1, email="ana@example.com", phone="+14155550101")).result(10)
    sms.wait(lambda: len(sms.sent) == 1, "no fallback after the unconfirmed email")
    engine.stop()
    assert len(email.attempts) == 1
    assert outcomes(pg_url) == [
        ("c-1", "email", "failed", "adapter:unconfirmed"),
        ("c-1", "sms", "sent", None),
    ]


def test_a_send_that_fails_for_good_falls_back_and_counts_against_no_cap(pg_url: str) -> None:
    email = Provider()
    email.script(permanent("21211"))
    engine = live(pg_url, {Channel.EMAIL: email})
    signed_up = [
        Event("identify", "c-1", NOW, traits={"email": "ana@example.com"}, message_id="i"),
        Event("track", "c-1", NOW, "Signed Up", message_id="s"),
    ]
    engine.submit(signed_up).result(10)
    email.wait(lambda: len(email.attempts) == 1, "the welcome email was never tried")
    engine.stop()
    assert outcomes(pg_url) == [
        ("c-1", "email", "failed", "adapter:21211"),
        ("c-1", "in_app", "sent", None),
    ]
    assert query(pg_url, "SELECT count(*) FROM cap_usage WHERE channel = 'email'") == [(0,)]
    assert query(pg_url, "SELECT count(*) FROM inbox") == [(1,)]


def test_a_customer_whose_events_fail_is_quarantined_live_and_stays_so_across_a_restart(
    pg_url: str, tmp_path: Path
) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), config_dir)
    (config_dir / "journeys" / "far_future.toml").write_text(
        'name = "far_future"\ncategory = "lifecycle"\n[entry]\nevent = "Joined Club"\n'
        'rule = "every"\n[[step]]\nname = "remind"\nafter = "520000w"\nchannels = ["email"]\n'
    )  # its step is due after datetime's end: entering it raises OverflowError
    config = load_config(config_dir)
    email = Provider()
    engine = live(pg_url, {Channel.EMAIL: email}, config=config)
    joined = Event("track", "q-1", NOW, "Joined Club", message_id="q-1:club")
    engine.submit([*order("q-1", 1, email="q@example.com")[:1], joined]).result(10)
    assert engine.health()["quarantined"] == 1
    engine.submit(order("ok-1", 2, email="ok@example.com")).result(10)
    email.wait(lambda: len(email.sent) == 1, "another customer was not served")
    engine.stop()

    engine = live(pg_url, {Channel.EMAIL: email}, config=config)
    assert engine.health()["quarantined"] == 1  # from the store
    later = Event("track", "q-1", NOW, "Order Completed", message_id="q-1:later")
    assert engine.submit([later]).result(10).accepted == 1
    engine.stop()
    assert [m.recipient.customer for m in email.sent] == ["ok-1"]
    rejects = [str(r[0]) for r in query(pg_url, "SELECT reason FROM rejects ORDER BY id")]
    assert len(rejects) == 2 and "OverflowError" in rejects[0] and "is quarantined" in rejects[1]
    reader = store_at(pg_url).reader()
    try:
        [(customer, (_, reason))] = reader.quarantined().items()
    finally:
        reader.close()
    assert customer == "q-1" and reason.startswith("OverflowError")


def test_an_outbox_whose_store_another_writer_took_over_sends_and_commits_nothing(
    pg_url: str,
) -> None:
    """A partition recreated on another node while the old one was only cut off: the
    old runner's outbox finds no more due sends, and commits no outcome."""
    email = Provider()
    email.outage = "connection"
    engine = live(pg_url, {Channel.EMAIL: email})
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    email.wait(lambda: len(email.attempts) >= 1, "the receipt was never tried")
    engine.stop(0.0)
    store = PostgresStore.from_url(pg_url)
    old = store.outbox()
    [row] = old.due("email", "9999", 10, ())

    async def take_over() -> None:
        writer = store.writer()
        await writer.open(fresh=False)
        await writer.close()

    asyncio.run(take_over())
    with pytest.raises(StoreFenced, match="another writer"):
        old.due("email", "9999", 10, ())
    sent = OutboxUpdate(row.entry.message_id, "sent", 1, "", "", "p-1", "", "", "")
    with pytest.raises(StoreFenced):
        old.update([sent])
    old.close()
    assert [s for _, s in outbox(pg_url)] == ["retrying"]


def test_a_status_callback_settles_a_send_waiting_to_be_reconciled_at_once(pg_url: str) -> None:
    email = AskableProvider()
    email.script(ambiguous(landed=True))
    engine = LiveEngine(
        load_config(shipped_config_dir()),
        store_at(pg_url),
        {Channel.EMAIL: email},
        None,
        Metrics(),
        delivery=replace(QUICK, reconcile_after=3600.0),  # not asked before the callback
        clock=MovableClock(),
        tick=0.05,
        poll=0.05,
    )
    engine.start()
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    email.wait(lambda: len(email.attempts) == 1, "the receipt was never attempted")
    [(sent_id, _)] = outbox(pg_url)
    callback = Event(
        "track", "c-1", NOW, "Message Delivered",
        properties={"channel": "email", "message_id": sent_id},
        message_id="provider:delivered:1",
    )  # fmt: skip
    engine.submit([callback]).result(10)
    email.wait(lambda: len(email.questions) == 1, "the provider was not asked after its callback")
    engine.stop()
    assert len(email.attempts) == 1
    assert outcomes(pg_url) == [("c-1", "email", "sent", None)]
