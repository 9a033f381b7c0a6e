"""The ChannelDispatcherActor alone: a recorder stands in for the store writer.

What a customer and an operator would notice: a dry-run send recorded once with its
cap usage; a live send staged in the outbox and nothing else until its provider
answers (the delivery runner's part, tested in test_live_outbox.py); an in-app message
delivered by being written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pykka
import pytest
from actor_support import WAIT, Inbox, recorder, send_request

from omniconsole.actors.dispatcher import ChannelDispatcherActor
from omniconsole.actors.messages import Dispatch, DispatchBatch, Sync
from omniconsole.domain.assignment import Arm
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import shipped_config_dir
from omniconsole.domain.governor import SEND, Decision
from omniconsole.domain.records import (
    CapUsageRecord,
    InboxRecord,
    LedgerRecord,
    OutboxEntry,
    OutboxRecord,
)
from omniconsole.domain.templates import load_templates

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


def live_dispatcher(channel: Channel) -> tuple[pykka.ActorRef[Any], pykka.ActorRef[Any], Inbox]:
    writer, rows = recorder()
    return ChannelDispatcherActor.start(channel, writer, live=True), writer, rows


def test_a_live_send_is_staged_pending_in_the_outbox_and_nothing_else() -> None:
    """Its ledger line waits for the provider's answer; the delivery runner sends only
    what the store holds, after the commit."""
    dispatcher, writer, rows = live_dispatcher(SMS)
    item = dispatch(SMS)
    dispatcher.tell(DispatchBatch([item]))
    settle(dispatcher, writer)
    [staged] = rows.records(OutboxRecord)
    assert (staged.message_id, staged.status, staged.category, staged.settled) == (
        item.request.message_id, "pending", "lifecycle", 0,
    )  # fmt: skip
    assert staged.next_attempt_at <= "2026-02-02T12:00:00.000000Z"  # due at once
    assert OutboxEntry.from_json(staged.payload).line["outcome"] == "sent"  # its line to be
    assert rows.records(LedgerRecord) == []
    assert rows.records(CapUsageRecord) == []


def test_a_live_in_app_send_is_delivered_by_being_written_in_the_decisions_checkpoint() -> None:
    dispatcher, writer, rows = live_dispatcher(IN_APP)
    item = dispatch(IN_APP, step="welcome", capped=False)
    dispatcher.tell(DispatchBatch([item]))
    settle(dispatcher, writer)
    assert [r.outcome for r in rows.records(LedgerRecord)] == ["sent"]
    assert [(r.customer, r.subject) for r in rows.records(InboxRecord)] == [("c-1", "j: welcome")]
    [row] = rows.records(OutboxRecord)
    assert (row.status, row.settled) == ("sent", 1)  # nothing left for the runner


def test_an_unknown_message_is_refused_with_a_type_error(
    writer: tuple[pykka.ActorRef[Any], Inbox],
) -> None:
    dispatcher = ChannelDispatcherActor.start(SMS, writer[0])
    with pytest.raises(TypeError, match="unexpected message"):
        dispatcher.ask(object(), timeout=WAIT)
    assert dispatcher.ask(Sync(), timeout=WAIT) is True


def test_a_variant_send_renders_the_variants_own_template_and_its_line_names_the_variant() -> None:
    templates = load_templates(shipped_config_dir() / "examples" / "holdouts" / "templates")
    writer, rows = recorder()
    dispatcher = ChannelDispatcherActor.start(SMS, writer, live=True, templates=templates)
    req = send_request(now=NOW, journey="onboarding", step="nudge_day3", channels=(SMS,))
    req.arm = Arm("b", False, "b", {"nudge_day3": "nudge_day3_b"})
    dispatcher.tell(DispatchBatch([Dispatch(req, Decision(SEND, SMS, None, "sent"), True)]))
    settle(dispatcher, writer)
    [staged] = rows.records(OutboxRecord)
    entry = OutboxEntry.from_json(staged.payload)
    assert entry.text.startswith("Hi there, two minutes is all it takes")
    assert entry.line["variant"] == "b"
