"""FatigueGovernorActor: every send request passes here (SPEC §4).

It owns each customer's cap usage, decides with the pure `decide`, writes the ledger
line of every deferral and suppression, and hands allowed sends to the channel's
dispatcher. Its answers go back to the asking profile shard as a message — it never
blocks on another actor. A request whose decision raises is answered `DECISION_FAILED`
(the shard quarantines that customer); the other requests are decided as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pykka

from omniconsole.actors.messages import (
    DecideBatch,
    Decided,
    Dispatch,
    DispatchBatch,
    ForgetUsageBefore,
    LoadUsage,
    Release,
    Rows,
    Sync,
)
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import Policy
from omniconsole.domain.governor import SEND, CapUsage, Decision, decide, is_capped
from omniconsole.domain.ledger import decision_record
from omniconsole.domain.records import LedgerRecord
from omniconsole.domain.timeutil import parse_timestamp

#: the outcome of a decision that raised: the asking shard quarantines that customer
DECISION_FAILED = "error"


def error_line(exc: BaseException) -> str:
    """An exception in one bounded line, for a quarantine record or a rejects line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


class FatigueGovernorActor(pykka.ThreadingActor):
    """The one place send decisions are made. All hooks run on the governor's thread."""

    def __init__(
        self,
        policy: Policy,
        dispatchers: Mapping[Channel, pykka.ActorRef[Any]],
        writer: pykka.ActorRef[Any],
    ) -> None:
        super().__init__()
        self.policy = policy
        self.dispatchers = dispatchers
        self.writer = writer
        self.usage: dict[str, CapUsage] = {}

    def on_receive(self, message: Any) -> Any:
        """Runs on the governor thread."""
        if isinstance(message, DecideBatch):
            self._decide(message)
            return None
        if isinstance(message, Sync):
            return True
        if isinstance(message, LoadUsage):
            for customer, at, channel in message.rows:
                self.usage.setdefault(customer, CapUsage()).record(at, channel)
            return len(message.rows)
        if isinstance(message, Release):
            usage = self.usage.get(message.customer)
            if usage is not None:
                usage.release(parse_timestamp(message.at), message.channel)
            return None
        if isinstance(message, ForgetUsageBefore):
            self._forget_before(message.now)
            return None
        raise TypeError(f"FatigueGovernorActor: unexpected message {message!r}")

    def _decide(self, message: DecideBatch) -> None:
        policy = self.policy
        decisions: list[Decision] = []
        rows: list[LedgerRecord] = []
        sends: dict[Channel, list[Dispatch]] = {}
        usage_map = self.usage
        for req in message.requests:
            usage = usage_map.get(req.customer)
            if usage is None:
                usage = usage_map[req.customer] = CapUsage()
            try:
                decision = decide(req, policy, usage)
            except Exception as exc:  # one customer's data must not stop every decision
                decisions.append(Decision(DECISION_FAILED, None, None, error_line(exc)))
                continue
            decisions.append(decision)
            channel = decision.channel
            if decision.outcome == SEND and channel is not None:
                capped = is_capped(policy, req.category, channel)
                if capped:
                    usage.record(req.now, str(channel))
                sends.setdefault(channel, []).append(Dispatch(req, decision, capped))
            else:
                rows.append(
                    decision_record(
                        req, decision, decision.outcome, decision.reason, decision.explanation
                    )
                )
        if rows:
            self.writer.tell(Rows(rows))
        for channel, items in sends.items():
            self.dispatchers[channel].tell(DispatchBatch(items))
        message.reply_to.tell(Decided(message.token, decisions))

    def _forget_before(self, now: datetime) -> None:
        longest = self.policy.longest_window
        cutoff = now - longest
        stale = [c for c, u in self.usage.items() if (u.last_at() or cutoff) <= cutoff]
        for customer in stale:
            del self.usage[customer]
