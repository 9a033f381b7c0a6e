"""ChannelDispatcherActor: one per channel; delivers the sends the governor allowed.

Dry run (replays): the send is recorded at once — ledger line `sent`, cap usage, inbox.

Live: each allowed send is rendered and written to the outbox as `pending`; it goes to
the provider only after the checkpoint that holds it has committed (`Committed`), so a
crash never loses a decided send nor sends one the store does not know about. The
adapter's answer comes back as `Delivered`; it writes the final ledger line (`sent`, or
`failed` with `adapter:<code>`), and a failure is reported to `report_failure` so the
engine can record an opt-out and fall back (SPEC §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pykka

from omniconsole.actors.messages import (
    Committed,
    Delivered,
    DeliveryFailure,
    Dispatch,
    DispatchBatch,
    Release,
    Resend,
    Rows,
    Sync,
    UseGovernor,
)
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.ledger import decision_record, ledger_line, ledger_record
from omniconsole.domain.messages import DeliveryResult, Handoff, OutboundMessage, Recipient
from omniconsole.domain.records import (
    CapUsageRecord,
    InboxRecord,
    LedgerRecord,
    OutboxEntry,
    OutboxRecord,
)
from omniconsole.domain.templates import TemplateError, TemplateSet
from omniconsole.domain.timeutil import to_micros


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
        adapter: ChannelAdapter | None = None,
        templates: TemplateSet | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        report_failure: Callable[[DeliveryFailure], None] | None = None,
        on_result: Callable[[str, str, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.writer = writer
        self.adapter = adapter
        self.templates = templates
        self.loop = loop
        self.report_failure = report_failure
        self.governor: pykka.ActorRef[Any] | None = None  # set by UseGovernor
        self.on_result = on_result
        self.live = loop is not None
        self.awaiting_commit: list[OutboxEntry] = []
        self.in_flight = 0

    def on_receive(self, message: Any) -> Any:
        """Runs on the dispatcher thread."""
        if isinstance(message, DispatchBatch):
            if self.live:
                self._stage(message.items)
            else:
                self._dry_run(message.items)
            return None
        if isinstance(message, Committed):
            entries, self.awaiting_commit = self.awaiting_commit, []
            for entry in entries:
                self._send(entry)
            return None
        if isinstance(message, Delivered):
            self._delivered(message)
            return None
        if isinstance(message, Resend):
            for entry in message.entries:
                self._send(entry)
            return None
        if isinstance(message, Sync):
            return self.in_flight
        if isinstance(message, UseGovernor):
            self.governor = message.governor
            return None
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
            rows.append(entry.record("pending"))
            self.awaiting_commit.append(entry)
        self.writer.tell(Rows(rows))

    def _entry(self, item: Dispatch) -> OutboxEntry:
        req, decision = item.request, item.decision
        recipient = req.recipient or Recipient(customer=req.customer)
        subject, text, html = f"{req.journey}: {req.step}", decision.explanation, None
        if self.templates is not None:
            # start-up validation covers the shipped steps; otherwise keep the plain text
            with contextlib.suppress(TemplateError):
                subject, text, html = self.templates.render(
                    req.journey, req.step, str(self.channel), recipient, decision.handoff,
                    req.properties,
                )  # fmt: skip
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

    def _send(self, entry: OutboxEntry) -> None:
        self.in_flight += 1  # until `_delivered` records the result
        if self.channel is Channel.IN_APP or self.adapter is None:
            ok = self.channel is Channel.IN_APP
            result = DeliveryResult(
                ok=ok,
                error_code=None if ok else "not_configured",
                permanent=not ok,
                detail="" if ok else f"{self.channel} is not configured",
            )
            self._delivered(Delivered(entry, result, 0.0))
            return
        assert self.loop is not None
        line = entry.line
        handoff = entry.handoff
        message = OutboundMessage(
            message_id=entry.message_id,
            channel=self.channel,
            category=Category(entry.category),
            journey=line["journey"],
            step=line["step"],
            recipient=Recipient(**entry.recipient),
            subject=entry.subject,
            text=entry.text,
            html=entry.html,
            handoff=None if handoff is None else Handoff(**handoff),
        )
        started = time.monotonic()
        future: Future[DeliveryResult] = asyncio.run_coroutine_threadsafe(
            self.adapter.send(message), self.loop
        )
        me = self.actor_ref

        def done(f: Future[DeliveryResult]) -> None:
            try:
                result = f.result()
            except Exception as exc:  # an adapter bug must not lose the message
                result = DeliveryResult(ok=False, error_code="adapter_error", detail=str(exc))
            if me.is_alive():
                me.tell(Delivered(entry, result, time.monotonic() - started))

        future.add_done_callback(done)

    def _delivered(self, message: Delivered) -> None:
        entry, result = message.entry, message.result
        line = entry.line
        self.in_flight -= 1
        if result.ok:
            record = final_record(entry, "sent", None)
            status = "sent"
            if entry.capped:
                self.writer.tell(
                    Rows([CapUsageRecord(entry.message_id, entry.customer, entry.at,
                                         str(self.channel))])
                )  # fmt: skip
            if self.channel is Channel.IN_APP:
                self.writer.tell(
                    Rows([InboxRecord(entry.message_id, entry.customer, entry.at,
                                      line["journey"], line["step"], entry.subject,
                                      entry.text)])
                )  # fmt: skip
        else:
            code = result.error_code or "error"
            entry = replace(entry, detail=result.detail or code)
            record = final_record(entry, "failed", f"adapter:{code}")
            status = "failed"
            if entry.capped and self.governor is not None:
                self.governor.tell(
                    Release(entry.customer, entry.message_id, entry.at, str(self.channel))
                )
            if self.report_failure is not None:
                self.report_failure(
                    DeliveryFailure(entry.customer, entry.message_id, str(self.channel),
                                    line["journey"], line["step"], code, result.opted_out)
                )  # fmt: skip
        self.writer.tell(Rows([record]))
        self.writer.tell(Rows([entry.record(status)]))
        if self.on_result is not None:
            self.on_result(str(self.channel), status, message.seconds)
