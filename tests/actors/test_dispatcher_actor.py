"""The ChannelDispatcherActor alone: a recorder stands in for the store writer and the
governor; live sends go to the in-memory fake adapter on an event loop in its own
thread, as under `serve`.

What a customer and an operator would notice: a send recorded once with its real
outcome, nothing sent that the store does not hold, and a failure that neither
counts against the customer's caps nor goes unreported.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pykka
import pytest
from actor_support import WAIT, Inbox, recorder, send_request

from omniconsole.actors.dispatcher import ChannelDispatcherActor
from omniconsole.actors.messages import (
    Committed,
    DeliveryFailure,
    Dispatch,
    DispatchBatch,
    Release,
    Resend,
    Sync,
    UseGovernor,
)
from omniconsole.adapters.channels.fake import FakeChannelAdapter, opted_out, permanent
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.governor import SEND, Decision
from omniconsole.domain.messages import DeliveryResult, OutboundMessage
from omniconsole.domain.records import (
    CapUsageRecord,
    InboxRecord,
    LedgerRecord,
    OutboxEntry,
    OutboxRecord,
)

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
AT = "2026-02-02T12:00:00Z"
SMS, IN_APP = Channel.SMS, Channel.IN_APP


def dispatch(
    channel: Channel,
    customer: str = "c-1",
    *,
    step: str = "s",
    capped: bool = True,
    category: Category = Category.LIFECYCLE,
) -> Dispatch:
    """One send the governor allowed on `channel`."""
    req = send_request(customer, now=NOW, step=step, channels=(channel,), category=category)
    return Dispatch(req, Decision(SEND, channel, None, f"sent on {channel}"), capped)


def settle(*refs: pykka.ActorRef[Any]) -> None:
    """Each actor in turn has handled everything sent to it before."""
    for ref in refs:
        ref.ask(Sync(), timeout=WAIT)


# ---- dry run (replays) -----------------------------------------------------------------


@pytest.fixture
def writer() -> tuple[pykka.ActorRef[Any], Inbox]:
    return recorder()


def test_a_dry_run_send_is_recorded_as_sent_with_its_cap_usage_at_once(
    writer: tuple[pykka.ActorRef[Any], Inbox],
) -> None:
    writer_ref, rows = writer
    dispatcher = ChannelDispatcherActor.start(SMS, writer_ref)
    item = dispatch(SMS)
    dispatcher.tell(DispatchBatch([item]))
    settle(dispatcher, writer_ref)
    [line] = rows.records(LedgerRecord)
    assert (line.message_id, line.channel, line.outcome, line.reason) == (
        item.request.message_id, "sms", "sent", None,
    )  # fmt: skip
    assert rows.records(CapUsageRecord) == [
        CapUsageRecord(item.request.message_id, "c-1", AT, "sms")
    ]
    assert rows.records(InboxRecord) == []


def test_an_uncapped_dry_run_send_leaves_no_cap_usage(
    writer: tuple[pykka.ActorRef[Any], Inbox],
) -> None:
    writer_ref, rows = writer
    dispatcher = ChannelDispatcherActor.start(SMS, writer_ref)
    dispatcher.tell(DispatchBatch([dispatch(SMS, capped=False, category=Category.TRANSACTIONAL)]))
    settle(dispatcher, writer_ref)
    assert [r.outcome for r in rows.records(LedgerRecord)] == ["sent"]
    assert rows.records(CapUsageRecord) == []


def test_a_dry_run_in_app_send_lands_in_the_customers_inbox(
    writer: tuple[pykka.ActorRef[Any], Inbox],
) -> None:
    writer_ref, rows = writer
    dispatcher = ChannelDispatcherActor.start(IN_APP, writer_ref)
    item = dispatch(IN_APP, step="welcome", capped=False)
    dispatcher.tell(DispatchBatch([item]))
    settle(dispatcher, writer_ref)
    assert rows.records(InboxRecord) == [
        InboxRecord(item.request.message_id, "c-1", AT, "j", "welcome", "j: welcome",
                    "sent on in_app")
    ]  # fmt: skip
    assert [r.channel for r in rows.records(LedgerRecord)] == ["in_app"]


# ---- live (serve) ----------------------------------------------------------------------


@pytest.fixture
def adapter_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The adapters' own event loop, running in a thread (the service's loop under serve)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="adapter-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


class LiveWorld:
    """A live dispatcher for one channel, with recorders for the writer, the governor and
    the engine's failure callback."""

    def __init__(
        self,
        channel: Channel,
        loop: asyncio.AbstractEventLoop,
        adapter: FakeChannelAdapter | None,
    ) -> None:
        self.writer, self.rows = recorder()
        self.governor, self.releases = recorder()
        self.failures = Inbox()
        self.adapter = adapter
        self.dispatcher = ChannelDispatcherActor.start(
            channel,
            self.writer,
            adapter=adapter,
            templates=None,
            loop=loop,
            report_failure=self.failures.put,  # called on the dispatcher thread
        )
        self.dispatcher.tell(UseGovernor(self.governor))

    def in_flight(self) -> int:
        return int(self.dispatcher.ask(Sync(), timeout=WAIT))

    def outbox(self, message_id: str) -> list[str]:
        """The statuses written for one outbox entry, in order."""
        return [r.status for r in self.rows.records(OutboxRecord) if r.message_id == message_id]

    def final_line(self, message_id: str) -> LedgerRecord:
        """Wait for the ledger line of a send's result."""
        [line] = self.rows.wait_for_records(LedgerRecord, lambda r: r.message_id == message_id)
        return line


@pytest.fixture
def fake() -> FakeChannelAdapter:
    return FakeChannelAdapter()


@pytest.fixture
def live(adapter_loop: asyncio.AbstractEventLoop, fake: FakeChannelAdapter) -> LiveWorld:
    return LiveWorld(SMS, adapter_loop, fake)


def test_a_live_send_waits_pending_in_the_outbox_and_nothing_goes_out_before_the_commit(
    live: LiveWorld, fake: FakeChannelAdapter
) -> None:
    item = dispatch(SMS)
    live.dispatcher.tell(DispatchBatch([item]))
    assert live.in_flight() == 0
    settle(live.writer)
    assert live.outbox(item.request.message_id) == ["pending"]
    [staged] = live.rows.records(OutboxRecord)
    assert OutboxEntry.from_json(staged.payload).line["outcome"] == "sent"  # its line to be
    assert live.rows.records(LedgerRecord) == []
    assert fake.attempts == []


def test_after_the_commit_the_send_goes_out_once_and_its_result_is_recorded(
    live: LiveWorld, fake: FakeChannelAdapter
) -> None:
    item = dispatch(SMS)
    message_id = item.request.message_id
    live.dispatcher.tell(DispatchBatch([item]))
    live.dispatcher.tell(Committed())
    line = live.final_line(message_id)
    assert (line.channel, line.outcome, line.reason) == ("sms", "sent", None)
    settle(live.dispatcher, live.writer)
    assert live.outbox(message_id) == ["pending", "sent"]
    assert live.rows.records(CapUsageRecord) == [CapUsageRecord(message_id, "c-1", AT, "sms")]
    assert [m.message_id for m in fake.sent] == [message_id]
    assert live.in_flight() == 0
    assert live.failures.all() == []
    live.dispatcher.tell(Committed())  # a later commit does not send it again
    settle(live.dispatcher)
    assert len(fake.attempts) == 1


def test_a_rejected_send_is_recorded_failed_reported_and_its_cap_released(
    live: LiveWorld, fake: FakeChannelAdapter
) -> None:
    fake.script(permanent("21211"))
    item = dispatch(SMS, step="nudge")
    message_id = item.request.message_id
    live.dispatcher.tell(DispatchBatch([item]))
    live.dispatcher.tell(Committed())
    line = live.final_line(message_id)
    assert (line.outcome, line.reason, line.handoff_from) == ("failed", "adapter:21211", None)
    assert live.failures.wait_for(DeliveryFailure) == [
        DeliveryFailure("c-1", message_id, "sms", "j", "nudge", "21211", False)
    ]
    assert live.releases.wait_for(Release) == [Release("c-1", message_id, AT, "sms")]
    settle(live.dispatcher, live.writer)
    assert live.outbox(message_id) == ["pending", "failed"]
    assert live.rows.records(CapUsageRecord) == []  # a failed send never counts


def test_a_provider_opt_out_is_reported_so_the_engine_can_record_it(
    live: LiveWorld, fake: FakeChannelAdapter
) -> None:
    fake.script(opted_out("21610"))
    item = dispatch(SMS)
    live.dispatcher.tell(DispatchBatch([item]))
    live.dispatcher.tell(Committed())
    [failure] = live.failures.wait_for(DeliveryFailure)
    assert (failure.error_code, failure.opted_out) == ("21610", True)


def test_an_uncapped_failed_send_releases_nothing(
    live: LiveWorld, fake: FakeChannelAdapter
) -> None:
    fake.script(permanent())
    item = dispatch(SMS, capped=False, category=Category.TRANSACTIONAL)
    live.dispatcher.tell(DispatchBatch([item]))
    live.dispatcher.tell(Committed())
    assert live.final_line(item.request.message_id).outcome == "failed"
    settle(live.dispatcher, live.governor)
    assert live.releases.all() == []


class GatedAdapter(FakeChannelAdapter):
    """A provider that answers only once the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        await self.gate.wait()
        return await super().send(message)


def test_sync_answers_how_many_sends_still_wait_for_their_provider(
    adapter_loop: asyncio.AbstractEventLoop,
) -> None:
    gated = GatedAdapter()
    world = LiveWorld(SMS, adapter_loop, gated)
    items = [dispatch(SMS, "c-1"), dispatch(SMS, "c-2")]
    world.dispatcher.tell(DispatchBatch(items))
    assert world.in_flight() == 0  # staged, not sent
    world.dispatcher.tell(Committed())
    assert world.in_flight() == 2
    adapter_loop.call_soon_threadsafe(gated.gate.set)
    for item in items:
        assert world.final_line(item.request.message_id).outcome == "sent"
    assert world.in_flight() == 0


class BrokenAdapter(FakeChannelAdapter):
    """An adapter with a bug: it raises instead of answering."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        raise RuntimeError("adapter bug")


def test_an_adapter_that_raises_leaves_a_failed_line_not_a_lost_message(
    adapter_loop: asyncio.AbstractEventLoop,
) -> None:
    world = LiveWorld(SMS, adapter_loop, BrokenAdapter())
    item = dispatch(SMS)
    world.dispatcher.tell(DispatchBatch([item]))
    world.dispatcher.tell(Committed())
    line = world.final_line(item.request.message_id)
    assert (line.outcome, line.reason) == ("failed", "adapter:adapter_error")
    assert "adapter bug" in line.explanation
    assert world.in_flight() == 0


def test_a_live_channel_with_no_adapter_fails_its_sends_as_not_configured(
    adapter_loop: asyncio.AbstractEventLoop,
) -> None:
    world = LiveWorld(SMS, adapter_loop, None)
    item = dispatch(SMS)
    world.dispatcher.tell(DispatchBatch([item]))
    world.dispatcher.tell(Committed())
    line = world.final_line(item.request.message_id)
    assert (line.outcome, line.reason) == ("failed", "adapter:not_configured")
    [failure] = world.failures.wait_for(DeliveryFailure)
    assert failure.error_code == "not_configured"


def test_a_live_in_app_send_needs_no_provider_and_lands_in_the_inbox(
    adapter_loop: asyncio.AbstractEventLoop,
) -> None:
    world = LiveWorld(IN_APP, adapter_loop, None)
    item = dispatch(IN_APP, step="welcome", capped=False)
    world.dispatcher.tell(DispatchBatch([item]))
    world.dispatcher.tell(Committed())
    assert world.final_line(item.request.message_id).outcome == "sent"
    settle(world.dispatcher, world.writer)
    assert [(r.customer, r.subject) for r in world.rows.records(InboxRecord)] == [
        ("c-1", "j: welcome")
    ]
    assert world.outbox(item.request.message_id) == ["pending", "sent"]


def test_entries_resent_after_a_restart_go_out_under_their_original_message_id(
    live: LiveWorld, fake: FakeChannelAdapter, adapter_loop: asyncio.AbstractEventLoop
) -> None:
    item = dispatch(SMS)
    live.dispatcher.tell(DispatchBatch([item]))  # staged by the process that then died
    settle(live.dispatcher, live.writer)
    [staged] = live.rows.records(OutboxRecord)
    restarted = LiveWorld(SMS, adapter_loop, fake)
    restarted.dispatcher.tell(Resend([OutboxEntry.from_json(staged.payload)]))
    assert restarted.final_line(item.request.message_id).outcome == "sent"
    assert [m.message_id for m in fake.sent] == [item.request.message_id]
    assert fake.sent[0].recipient.customer == "c-1"


def test_an_unknown_message_is_refused_with_a_type_error(
    writer: tuple[pykka.ActorRef[Any], Inbox],
) -> None:
    dispatcher = ChannelDispatcherActor.start(SMS, writer[0])
    with pytest.raises(TypeError, match="unexpected message"):
        dispatcher.ask(object(), timeout=WAIT)
    assert dispatcher.ask(Sync(), timeout=WAIT) == 0
