"""Ledger lines (SPEC §6): one per governor decision, keys in a fixed order."""

from __future__ import annotations

from typing import Any

import orjson

from omniconsole.domain.governor import Decision, SendRequest
from omniconsole.domain.records import LedgerRecord
from omniconsole.domain.timeutil import format_timestamp, to_micros


def ledger_line(
    req: SendRequest, decision: Decision, outcome: str, reason: str | None
) -> dict[str, Any]:
    """The ledger object for one decision. `outcome` is final here (sent/failed/...)."""
    channel = decision.channel
    handoff = decision.handoff if outcome == "sent" else None
    line = {
        "at": format_timestamp(req.now),
        "customer": req.customer,
        "journey": req.journey,
        "step": req.step,
        "message_id": req.message_id,
        "channel": None if channel is None else str(channel),
        "category": str(req.category),
        "outcome": outcome,
        "reason": reason,
        "handoff_from": None if handoff is None else handoff.to_json(),
    }
    if decision.extra is not None:
        line.update(decision.extra)  # extra keys: only where channel rules are configured
    arm = req.arm
    if arm is not None and arm.variant is not None:
        line["variant"] = arm.variant  # an extra key, only where variants are configured
    return line


def encode_line(line: dict[str, Any]) -> str:
    """Compact JSON, keys in insertion order: the same object gives the same bytes."""
    return orjson.dumps(line).decode()


def ledger_record(
    line: dict[str, Any],
    ts: int,
    seq: int,
    explanation: str,
    deferred_until: str | None = None,
) -> LedgerRecord:
    """The store record of one ledger line (`ts`, `seq`: its place in the total order)."""
    handoff = line["handoff_from"]
    return LedgerRecord(
        line["at"],
        ts,
        line["customer"],
        seq,
        line["message_id"],
        line["journey"],
        line["step"],
        line["channel"],
        line["category"],
        line["outcome"],
        line["reason"],
        None if handoff is None else orjson.dumps(handoff).decode(),
        deferred_until,
        explanation,
        encode_line(line),
    )


def decision_record(
    req: SendRequest, decision: Decision, outcome: str, reason: str | None, explanation: str
) -> LedgerRecord:
    """The store record of one decision's ledger line."""
    until = decision.until if outcome == "deferred" else None
    return ledger_record(
        ledger_line(req, decision, outcome, reason),
        to_micros(req.now),
        req.seq,
        explanation,
        None if until is None else format_timestamp(until),
    )
