"""ChannelDispatcherActor: one per channel; delivers the sends the governor allowed.

In a replay the adapter is a dry run that only records; the ledger line `sent` and the
cap usage row are written here, after the adapter answered.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.governor import ledger_row
from actors.messages import Dispatch, DispatchBatch, Rows, Sync
from omniconsole.domain.channels import Channel
from omniconsole.domain.timeutil import format_timestamp


class ChannelDispatcherActor(pykka.ThreadingActor):
    """Delivers one channel's messages. All hooks run on the dispatcher's thread."""

    def __init__(self, channel: Channel, writer: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.channel = channel
        self.writer = writer
        self.sent = 0

    def on_receive(self, message: Any) -> Any:
        """Runs on the dispatcher thread."""
        if isinstance(message, DispatchBatch):
            self._dry_run(message.items)
            return None
        if isinstance(message, Sync):
            return True
        raise TypeError(f"ChannelDispatcherActor: unexpected message {message!r}")

    def _dry_run(self, items: Any) -> None:
        ledger: list[tuple[Any, ...]] = []
        caps: list[tuple[Any, ...]] = []
        inbox: list[tuple[Any, ...]] = []
        for item in items:
            assert isinstance(item, Dispatch)
            req, decision = item.request, item.decision
            ledger.append(ledger_row(req, decision, "sent", None, decision.explanation))
            at = format_timestamp(req.now)
            if item.capped:
                caps.append((req.message_id, req.customer, at, str(self.channel)))
            if self.channel is Channel.IN_APP:
                inbox.append(
                    (
                        req.message_id,
                        req.customer,
                        at,
                        req.journey,
                        req.step,
                        f"{req.journey}: {req.step}",
                        decision.explanation,
                    )
                )
        self.sent += len(ledger)
        self.writer.tell(Rows("ledger", ledger))
        if caps:
            self.writer.tell(Rows("cap_usage", caps))
        if inbox:
            self.writer.tell(Rows("inbox", inbox))
