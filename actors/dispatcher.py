"""ChannelDispatcherActor: one per channel; delivers the sends the governor allowed.

Dry run (replays): the send is recorded at once — ledger line `sent`, cap usage, inbox.

Live: each allowed send is rendered and written to the outbox as `pending`, in the
checkpoint that holds its decision; the delivery runner (`omniconsole.engine.delivery`)
sends only what a committed checkpoint holds, so a crash never loses a decided send nor
sends one the store does not know about. The final ledger line is written when the
provider's answer is settled (`final_record`). In-app messages need no provider: the
inbox row, the `sent` line and a settled outbox row go in the decision's checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pykka

from omniconsole.actors.messages import Dispatch, DispatchBatch, Rows, Sync
from omniconsole.domain.channels import Channel
from omniconsole.domain.ledger import decision_record, ledger_line, ledger_record
from omniconsole.domain.messages import Recipient
from omniconsole.domain.records import (
    OUTBOX_PENDING,
    OUTBOX_SENT,
    CapUsageRecord,
    InboxRecord,
    LedgerRecord,
    OutboxEntry,
    OutboxRecord,
    OutboxUpdate,
)
from omniconsole.domain.templates import TemplateError, TemplateSet
from omniconsole.domain.timeutil import to_micros
from omniconsole.domain.tracking import LinkTracker


def final_record(entry: OutboxEntry, outcome: str, reason: str | None) -> LedgerRecord:
    """The ledger record of an outbox entry's final line (`sent` or `failed`)."""
    line = {**entry.line, "outcome": outcome, "reason": reason}
    if outcome != "sent":
        line["handoff_from"] = None
    explanation = entry.explanation if outcome == "sent" else f"{reason}: {entry.detail}"
    return ledger_record(line, entry.ts, entry.seq, explanation)


class ChannelDispatcherActor(pykka.ThreadingActor):
    """Delivers one channel's messages. All hooks run on the dispatcher's thread."""

    def __init__(
        self,
        channel: Channel,
        writer: pykka.ActorRef[Any],
        *,
        live: bool = False,
        templates: TemplateSet | None = None,
        tracker: LinkTracker | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.writer = writer
        self.templates = templates
        self.live = live
        # click redirects and the open pixel (`[tracking]`); None: links as written
        self.tracker = tracker

    def on_receive(self, message: Any) -> Any:
        """Runs on the dispatcher thread."""
        if isinstance(message, DispatchBatch):
            if self.live:
                self._stage(message.items)
            else:
                self._dry_run(message.items)
            return None
        if isinstance(message, Sync):
            return True
        raise TypeError(f"ChannelDispatcherActor: unexpected message {message!r}")

    # ---- dry run ----

    def _dry_run(self, items: Sequence[Dispatch]) -> None:
        ledger: list[LedgerRecord] = []
        caps: list[CapUsageRecord] = []
        inbox: list[InboxRecord] = []
        channel = str(self.channel)
        in_app = self.channel is Channel.IN_APP
        for item in items:
            req, decision = item.request, item.decision
            record = decision_record(req, decision, "sent", None, decision.explanation)
            ledger.append(record)
            at = record.at
            if item.capped:
                caps.append(CapUsageRecord(req.message_id, req.customer, at, channel))
            if in_app:
                inbox.append(
                    InboxRecord(req.message_id, req.customer, at, req.journey, req.step,
                                f"{req.journey}: {req.step}", decision.explanation)
                )  # fmt: skip
        self.writer.tell(Rows(ledger))
        if caps:
            self.writer.tell(Rows(caps))
        if inbox:
            self.writer.tell(Rows(inbox))

    # ---- live ----

    def _stage(self, items: Sequence[Dispatch]) -> None:
        rows: list[OutboxRecord] = []
        for item in items:
            entry = self._entry(item)
            if self.channel is Channel.IN_APP:
                self._in_app(entry)
            else:
                rows.append(entry.record(OUTBOX_PENDING))
        if rows:
            self.writer.tell(Rows(rows))

    def _in_app(self, entry: OutboxEntry) -> None:
        """An in-app message is delivered by writing it: all in the decision's checkpoint."""
        line = entry.line
        self.writer.tell(Rows([final_record(entry, "sent", None)]))
        self.writer.tell(
            Rows([InboxRecord(entry.message_id, entry.customer, entry.at, line["journey"],
                              line["step"], entry.subject, entry.text)])
        )  # fmt: skip
        if entry.capped:
            self.writer.tell(
                Rows([CapUsageRecord(entry.message_id, entry.customer, entry.at,
                                     str(self.channel))])
            )  # fmt: skip
        done = OutboxUpdate(entry.message_id, OUTBOX_SENT, 0, "", "", None, entry.at, entry.at)
        self.writer.tell(Rows([entry.settled(done)]))

    def _entry(self, item: Dispatch) -> OutboxEntry:
        req, decision = item.request, item.decision
        recipient = req.recipient or Recipient(customer=req.customer)
        subject, text, html = f"{req.journey}: {req.step}", decision.explanation, None
        if self.templates is not None:
            # a variant may name its own template for the step
            template = None if req.arm is None else req.arm.templates.get(req.step)
            # start-up validation covers the shipped steps; otherwise keep the plain text
            with contextlib.suppress(TemplateError, KeyError, ValueError):
                subject, text, html = self.templates.render(
                    req.journey, req.step, str(self.channel), recipient, decision.handoff,
                    req.properties, template,
                )  # fmt: skip
        if self.tracker is not None:
            text, html = self.tracker.track(
                req.message_id, self.channel, req.customer, recipient.traits, text, html
            )
        handoff = decision.handoff
        return OutboxEntry(
            line=ledger_line(req, decision, "sent", None),
            ts=to_micros(req.now),
            seq=req.seq,
            capped=item.capped,
            explanation=decision.explanation,
            category=str(req.category),
            recipient={
                "customer": recipient.customer,
                "email": recipient.email,
                "phone": recipient.phone,
                "push_token": recipient.push_token,
                "first_name": recipient.first_name,
                "locale": recipient.locale,
                "timezone": recipient.timezone,
            },
            subject=subject,
            text=text,
            html=html,
            handoff=None if handoff is None else handoff.to_json(),
        )
