"""Live delivery through the outbox, with the in-memory fake as the provider.

A send decided and committed, but with no result when the process died, goes out on
restart — once, under its original message id — and nothing is decided twice. An
outage loses nothing: sends wait and go when the provider recovers, or expire at their
category's maximum age; an ambiguous send is never repeated blindly.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from live_fakes import NOW, QUICK, AskableProvider, MovableClock, Provider, order

from omniconsole.adapters.channels.fake import (
    FakeChannelAdapter,
    ambiguous,
    permanent,
)
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.adapters.channels.settings import DeliverySettings
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.events import Event
from omniconsole.domain.messages import DeliveryResult, OutboundMessage
from omniconsole.engine.live import LiveEngine


class StuckAdapter(FakeChannelAdapter):
    """A provider call that never answers: the process dies while it is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class RecordingAdapter(FakeChannelAdapter):
    """Delivers, and signals each delivery."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = threading.Event()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        result = await super().send(message)
        self.delivered.set()
        return result


class FixedClock:
    def now(self) -> datetime:
        return NOW


def engine(db: Path, adapter: FakeChannelAdapter) -> LiveEngine:
    return LiveEngine(
        load_config(shipped_config_dir()),
        SqliteStore(db),
        {Channel.EMAIL: adapter},
        None,
        Metrics(),
        clock=FixedClock(),
        tick=0.05,
        poll=0.05,
    )


def ledger(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [orjson.loads(r[0]) for r in conn.execute("SELECT line FROM ledger ORDER BY id")]
    finally:
        conn.close()


def outbox(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT message_id, status FROM outbox")]
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_a_send_in_flight_at_a_crash_is_sent_once_on_restart(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    events = [
        Event("identify", "c-1", NOW, traits={"email": "ana@example.com"}, message_id="e-1"),
        Event("track", "c-1", NOW, "Signed Up", message_id="e-2"),
    ]

    stuck = StuckAdapter()
    first = engine(db, stuck)
    await asyncio.to_thread(first.start)
    result = await first.accept(events)  # durable: decision and outbox row committed
    assert result.accepted == 2
    assert await asyncio.to_thread(stuck.entered.wait, 10), "the welcome email was never sent"
    await asyncio.to_thread(first.stop, 0.0)  # the process "dies" with the send in flight
    [(message_id, status)] = outbox(db)
    assert status == "pending"
    assert [line["outcome"] for line in ledger(db)] == []  # no result was recorded

    working = RecordingAdapter()
    second = engine(db, working)
    await asyncio.to_thread(second.start)
    assert await asyncio.to_thread(working.delivered.wait, 10), "the pending send was lost"
    duplicate = await second.accept(events)  # the client retries: nothing is applied twice
    assert (duplicate.accepted, duplicate.duplicates) == (0, 2)
    await asyncio.to_thread(second.stop)

    assert [m.message_id for m in working.sent] == [message_id]
    lines = ledger(db)
    assert [(x["step"], x["channel"], x["outcome"]) for x in lines] == [
        ("welcome", "email", "sent")
    ]
    assert lines[0]["message_id"] == message_id
    assert outbox(db) == [(message_id, "sent")]


# ---- outages, expiry, ambiguity: the outbox keeps every decided send --------------------


def live(
    db: Path,
    adapters: dict[Channel, FakeChannelAdapter],
    clock: Any = None,
    metrics: Metrics | None = None,
) -> LiveEngine:
    engine = LiveEngine(
        load_config(shipped_config_dir()),
        SqliteStore(db),
        adapters,
        None,
        metrics or Metrics(),
        delivery=QUICK,
        clock=clock or MovableClock(),
        tick=0.05,
        poll=0.05,
    )
    engine.start()
    return engine


def outcomes(db: Path) -> list[tuple[str, str, str, str | None]]:
    return [(x["customer"], x["channel"], x["outcome"], x["reason"]) for x in ledger(db)]  # type: ignore[misc]


def test_a_provider_outage_loses_nothing_the_sends_wait_and_go_when_it_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    email = Provider(retry=RetryPolicy(attempts=2, base_delay=0), failure_threshold=3,
                     reset_timeout=0.1)  # fmt: skip
    email.outage = "connection"
    engine = live(db, {Channel.EMAIL: email})
    customers = [f"c-{i}" for i in range(6)]
    for i, customer in enumerate(customers):
        engine.submit(order(customer, i, email=f"{customer}@example.com")).result(10)
    # the provider is down: every send is tried, the breaker opens, nothing is final
    email.wait(lambda: email.health().get(Channel.EMAIL) == "circuit_open", "breaker never opened")
    email.wait(lambda: len(email.attempts) >= 6, "the sends were not tried")
    assert email.sent == []
    email.outage = None  # it comes back
    email.wait(lambda: len(email.sent) == 6, "the sends waiting in the outbox never went")
    engine.stop()
    receipts = outcomes(db)
    assert sorted(receipts) == [(c, "email", "sent", None) for c in customers]
    assert sorted(m.recipient.customer for m in email.sent) == customers  # once each
    assert {status for _, status in outbox(db)} == {"sent"}


def test_a_send_still_waiting_at_its_maximum_age_expires_and_falls_back(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    clock = MovableClock()
    email, sms = Provider(reset_timeout=0.1), Provider()
    email.outage = "http_503"
    engine = live(db, {Channel.EMAIL: email, Channel.SMS: sms}, clock)
    engine.submit(order("c-1", 1, email="ana@example.com", phone="+14155550101")).result(10)
    email.wait(lambda: len(email.attempts) >= 1, "the receipt was never tried")
    clock.jump = timedelta(hours=72, seconds=1)  # transactional sends wait 72 h at most
    sms.wait(lambda: len(sms.sent) == 1, "the expired receipt did not fall back to SMS")
    engine.stop()
    assert outcomes(db) == [
        ("c-1", "email", "failed", "adapter:expired"),
        ("c-1", "sms", "sent", None),
    ]
    assert email.sent == []


@pytest.mark.parametrize("landed", [True, False])
def test_an_ambiguous_send_is_reconciled_before_any_second_attempt(
    tmp_path: Path, landed: bool
) -> None:
    db = tmp_path / "live.db"
    email = AskableProvider()
    email.script(ambiguous(landed=landed))  # the answer is lost on the way back
    engine = live(db, {Channel.EMAIL: email})
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    email.wait(lambda: len(email.questions) == 1, "the provider was never asked")
    if not landed:  # the provider says it has no such message: only then it goes again
        email.wait(lambda: len(email.sent) == 1, "the receipt was not sent again")
    engine.stop()
    assert len(email.received) == 1  # exactly once at the provider
    assert [q for q, _ in email.questions] == [email.received[0].message_id]
    assert len(email.attempts) == (1 if landed else 2)
    assert outcomes(db) == [("c-1", "email", "sent", None)]


def test_an_ambiguous_send_that_cannot_be_asked_is_unconfirmed_and_never_repeated(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    email, sms = Provider(), Provider()
    email.script(ambiguous(landed=True))  # SMTP: a timeout after DATA
    engine = live(db, {Channel.EMAIL: email, Channel.SMS: sms})
    engine.submit(order("c-1", 1, email="ana@example.com", phone="+14155550101")).result(10)
    sms.wait(lambda: len(sms.sent) == 1, "no fallback after the unconfirmed email")
    engine.stop()
    assert len(email.attempts) == 1
    assert outcomes(db) == [
        ("c-1", "email", "failed", "adapter:unconfirmed"),
        ("c-1", "sms", "sent", None),
    ]
    assert sorted(status for _, status in outbox(db)) == ["sent", "unconfirmed"]


def test_a_stopped_engine_says_so_and_accepts_nothing(tmp_path: Path) -> None:
    engine = live(tmp_path / "live.db", {})
    assert engine.health()["accepting"] is True
    engine.stop()
    health = engine.health()
    assert (health["accepting"], health["engine"]) == (False, "stopped")
    with pytest.raises(RuntimeError):
        engine.submit(order("c-1", 1)).result(5)


class Hanging(FakeChannelAdapter):
    """A saturated provider: takes every call and never answers. Records the loop each
    call runs on and how many are open at once."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0
        self.most_open = 0
        self.loops: set[asyncio.AbstractEventLoop] = set()
        self.changed = threading.Condition()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        with self.changed:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            self.loops.add(asyncio.get_running_loop())
            self.changed.notify_all()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.asyncio
async def test_a_saturated_provider_holds_only_its_share_and_never_the_callers_loop(
    tmp_path: Path,
) -> None:
    """Ingest is decoupled from delivery: the sends run on the runner's own loop, at most
    `concurrency` at a time; the rest wait in the store, not in memory."""
    hanging = Hanging()
    engine = LiveEngine(
        load_config(shipped_config_dir()), SqliteStore(tmp_path / "live.db"),
        {Channel.EMAIL: hanging}, None, Metrics(),
        delivery=DeliverySettings(concurrency=4), clock=MovableClock(), tick=0.05, poll=0.05,
    )  # fmt: skip
    await asyncio.to_thread(engine.start)
    for n in range(40):
        result = await engine.accept(order(f"c-{n}", n, email=f"c{n}@example.com"))
        assert result.accepted == 2  # ingest answers while the provider hangs
    with hanging.changed:
        assert hanging.changed.wait_for(lambda: hanging.open == 4, 20)
    await engine.accept(order("late", 99, email="late@example.com"))  # another wake-up
    assert hanging.most_open == 4
    assert asyncio.get_running_loop() not in hanging.loops
    await asyncio.to_thread(engine.stop, 0.0)
    assert [status for _, status in outbox(tmp_path / "live.db")] == ["pending"] * 41


def test_a_customer_whose_events_fail_is_quarantined_live_and_stays_so_across_a_restart(
    tmp_path: Path,
) -> None:
    """An exception applying one customer's events stops that customer — recorded, shown
    by /healthz — while everyone else is served; after a restart it stays stopped."""
    config = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), config)
    (config / "journeys" / "far_future.toml").write_text(
        'name = "far_future"\ncategory = "lifecycle"\n[entry]\nevent = "Joined Club"\n'
        'rule = "every"\n[[step]]\nname = "remind"\nafter = "520000w"\nchannels = ["email"]\n'
    )  # its step is due after datetime's end: entering it raises OverflowError
    db = tmp_path / "live.db"
    email = Provider()

    def start() -> LiveEngine:
        engine = LiveEngine(load_config(config), SqliteStore(db), {Channel.EMAIL: email}, None,
                            Metrics(), clock=MovableClock(), tick=0.05, poll=0.05)  # fmt: skip
        engine.start()
        return engine

    engine = start()
    joined = Event("track", "q-1", NOW, "Joined Club", message_id="q-1:club")
    assert (
        engine.submit([*order("q-1", 1, email="q@example.com")[:1], joined]).result(10).accepted
        == 2
    )
    assert engine.health()["quarantined"] == 1
    engine.submit(order("ok-1", 2, email="ok@example.com")).result(10)
    email.wait(lambda: len(email.sent) == 1, "another customer was not served")
    engine.stop()

    engine = start()  # the quarantine is in the store
    assert engine.health()["quarantined"] == 1
    later = Event("track", "q-1", NOW, "Order Completed", message_id="q-1:later")
    assert engine.submit([later]).result(10).accepted == 1  # stored ...
    engine.stop()
    assert [m.recipient.customer for m in email.sent] == ["ok-1"]  # ... not applied
    conn = sqlite3.connect(db)
    try:
        rejects = [r[0] for r in conn.execute("SELECT reason FROM rejects ORDER BY id")]
    finally:
        conn.close()
    assert len(rejects) == 2 and "OverflowError" in rejects[0] and "is quarantined" in rejects[1]


class Broken(Provider):
    """A provider adapter with a bug: it raises instead of answering."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            raise RuntimeError("adapter bug")
        finally:
            with self.changed:
                self.attempts.append(message)
                self.changed.notify_all()


@pytest.mark.parametrize(
    ("adapter", "reason"),
    [(lambda: Provider(), "adapter:21211"), (lambda: Broken(), "adapter:adapter_error")],
    ids=["rejected", "raising"],
)
def test_a_send_that_fails_for_good_is_recorded_failed_and_falls_back_not_lost(
    tmp_path: Path, adapter: Callable[[], Provider], reason: str
) -> None:
    """The welcome email (lifecycle, capped) fails: its line says why, it counts against
    no cap, and the step falls back to the next channel, in-app (SPEC §5)."""
    db = tmp_path / "live.db"
    email = adapter()
    email.script(permanent("21211"))
    engine = live(db, {Channel.EMAIL: email})
    signed_up = [
        Event("identify", "c-1", NOW, traits={"email": "ana@example.com"}, message_id="i"),
        Event("track", "c-1", NOW, "Signed Up", message_id="s"),
    ]
    engine.submit(signed_up).result(10)
    email.wait(lambda: len(email.attempts) == 1, "the welcome email was never tried")
    engine.stop()  # settles the failure; its fallback is decided in the same step
    assert outcomes(db) == [("c-1", "email", "failed", reason), ("c-1", "in_app", "sent", None)]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute(
            "SELECT count(*) FROM cap_usage WHERE channel = 'email'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM inbox").fetchone() == (1,)
    finally:
        conn.close()


def test_a_send_left_waiting_for_a_channel_no_longer_configured_fails_as_such(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    engine = live(db, {Channel.EMAIL: Hanging()})
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    engine.stop(0.0)  # the receipt is still waiting
    done = threading.Event()  # the runner reports each outcome through the metrics
    restarted = live(db, {}, metrics=Watching(done))  # SMTP_* unset now
    assert done.wait(20), "the waiting receipt was never settled"
    restarted.stop()
    assert outcomes(db)[0] == ("c-1", "email", "failed", "adapter:not_configured")


class Watching(Metrics):
    """Metrics that signal the first send outcome recorded."""

    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self.done = done

    def send_recorded(self, channel: str, outcome: str) -> None:
        super().send_recorded(channel, outcome)
        self.done.set()


def test_a_status_callback_settles_a_send_waiting_to_be_reconciled_at_once(
    tmp_path: Path,
) -> None:
    """The provider's answer was lost, so the send waits an hour to be asked about; a
    delivery callback for it proves it landed: the provider is asked now, and it is
    `sent` — once, with no second attempt."""
    db = tmp_path / "live.db"
    email = AskableProvider()
    email.script(ambiguous(landed=True))
    engine = LiveEngine(
        load_config(shipped_config_dir()),
        SqliteStore(db),
        {Channel.EMAIL: email},
        None,
        Metrics(),
        delivery=DeliverySettings(retry_base=0.02, retry_max=0.05, reconcile_after=3600.0),
        clock=MovableClock(),
        tick=0.05,
        poll=0.05,
    )
    engine.start()
    engine.submit(order("c-1", 1, email="ana@example.com")).result(10)
    email.wait(lambda: len(email.attempts) == 1, "the receipt was never attempted")
    [(sent_id, status)] = outbox(db)
    assert status in ("pending", "reconciling")
    callback = Event(
        "track", "c-1", NOW, "Message Delivered",
        properties={"channel": "email", "message_id": sent_id},
        message_id="provider:delivered:1",
    )  # fmt: skip
    engine.submit([callback]).result(10)
    email.wait(lambda: len(email.questions) == 1, "the provider was not asked after its callback")
    engine.stop()
    assert len(email.attempts) == 1
    assert outcomes(db) == [("c-1", "email", "sent", None)]
