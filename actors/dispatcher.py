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
from dataclasses import dataclass
from typing import Any

import orjson
import pykka

from omniconsole.actors.governor import Release, ledger_row
from omniconsole.actors.messages import Dispatch, DispatchBatch, Rows, Sync, UseGovernor
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.store.sqlite import ledger_store_row
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.ledger import ledger_line
from omniconsole.domain.messages import DeliveryResult, Handoff, OutboundMessage, Recipient
from omniconsole.domain.templates import TemplateError, TemplateSet
from omniconsole.domain.timeutil import to_micros


@dataclass(frozen=True, slots=True)
class Committed:
    """The store has committed every outbox row written so far: send them."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The adapter answered for one outbox entry."""

    entry: dict[str, Any]
    result: DeliveryResult
    seconds: float


@dataclass(frozen=True, slots=True)
class Resend:
    """After a restart: outbox entries decided and committed but with no known result."""

    entries: Sequence[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """What the engine needs to fall back after a failed live send."""

    customer: str
    message_id: str
    channel: str
    journey: str
    step: str
    error_code: str
    opted_out: bool


def sent_row(entry: dict[str, Any], outcome: str, reason: str | None) -> tuple[Any, ...]:
    """The store's ledger row for an outbox entry's final line."""
    line = {**entry["line"], "outcome": outcome, "reason": reason}
    if outcome != "sent":
        line["handoff_from"] = None
    explanation = entry["explanation"] if outcome == "sent" else f"{reason}: {entry['detail']}"
    return ledger_store_row(line, entry["ts"], entry["seq"], explanation)


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
        self.awaiting_commit: list[dict[str, Any]] = []
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
        ledger: list[tuple[Any, ...]] = []
        caps: list[tuple[Any, ...]] = []
        inbox: list[tuple[Any, ...]] = []
        channel = str(self.channel)
        in_app = self.channel is Channel.IN_APP
        for item in items:
            req, decision = item.request, item.decision
            row = ledger_row(req, decision, "sent", None, decision.explanation)
            ledger.append(row)
            at = row[0]
            if item.capped:
                caps.append((req.message_id, req.customer, at, channel))
            if in_app:
                inbox.append(
                    (req.message_id, req.customer, at, req.journey, req.step,
                     f"{req.journey}: {req.step}", decision.explanation)
                )  # fmt: skip
        self.writer.tell(Rows("ledger", ledger))
        if caps:
            self.writer.tell(Rows("cap_usage", caps))
        if inbox:
            self.writer.tell(Rows("inbox", inbox))

    # ---- live ----

    def _stage(self, items: Sequence[Dispatch]) -> None:
        rows: list[tuple[Any, ...]] = []
        for item in items:
            entry = self._entry(item)
            rows.append(
                (entry["line"]["message_id"], entry["line"]["customer"], str(self.channel),
                 entry["line"]["at"], orjson.dumps(entry).decode(), "pending")
            )  # fmt: skip
            self.awaiting_commit.append(entry)
        self.writer.tell(Rows("outbox", rows))

    def _entry(self, item: Dispatch) -> dict[str, Any]:
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
        return {
            "line": ledger_line(req, decision, "sent", None),
            "ts": to_micros(req.now),
            "seq": req.seq,
            "capped": item.capped,
            "explanation": decision.explanation,
            "detail": "",
            "category": str(req.category),
            "recipient": {
                "customer": recipient.customer,
                "email": recipient.email,
                "phone": recipient.phone,
                "push_token": recipient.push_token,
                "first_name": recipient.first_name,
                "locale": recipient.locale,
                "timezone": recipient.timezone,
            },
            "subject": subject,
            "text": text,
            "html": html,
            "handoff": None if handoff is None else handoff.to_json(),
        }

    def _send(self, entry: dict[str, Any]) -> None:
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
        line = entry["line"]
        rec = entry["recipient"]
        handoff = entry["handoff"]
        message = OutboundMessage(
            message_id=line["message_id"],
            channel=self.channel,
            category=Category(entry["category"]),
            journey=line["journey"],
            step=line["step"],
            recipient=Recipient(**rec),
            subject=entry["subject"],
            text=entry["text"],
            html=entry["html"],
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
        line = entry["line"]
        self.in_flight -= 1
        rows: list[tuple[Any, ...]] = []
        if result.ok:
            rows.append(sent_row(entry, "sent", None))
            status = "sent"
            if entry["capped"]:
                self.writer.tell(
                    Rows("cap_usage", [(line["message_id"], line["customer"], line["at"],
                                        str(self.channel))])
                )  # fmt: skip
            if self.channel is Channel.IN_APP:
                self.writer.tell(
                    Rows("inbox", [(line["message_id"], line["customer"], line["at"],
                                    line["journey"], line["step"], entry["subject"],
                                    entry["text"])])
                )  # fmt: skip
        else:
            code = result.error_code or "error"
            entry = {**entry, "detail": result.detail or code}
            rows.append(sent_row(entry, "failed", f"adapter:{code}"))
            status = "failed"
            if entry["capped"] and self.governor is not None:
                self.governor.tell(Release(line["customer"], line["message_id"], line["at"]))
            if self.report_failure is not None:
                self.report_failure(
                    DeliveryFailure(line["customer"], line["message_id"], str(self.channel),
                                    line["journey"], line["step"], code, result.opted_out)
                )  # fmt: skip
        self.writer.tell(Rows("ledger", rows))
        self.writer.tell(
            Rows("outbox", [(line["message_id"], line["customer"], str(self.channel),
                             line["at"], orjson.dumps(entry).decode(), status)])
        )  # fmt: skip
        if self.on_result is not None:
            self.on_result(str(self.channel), status, message.seconds)
