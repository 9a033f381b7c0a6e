"""Ledger lines (SPEC §6): one per governor decision, keys in a fixed order."""

from __future__ import annotations

from typing import Any

import orjson

from omniconsole.domain.governor import Decision, SendRequest
from omniconsole.domain.timeutil import format_timestamp


def ledger_line(
    req: SendRequest, decision: Decision, outcome: str, reason: str | None
) -> dict[str, Any]:
    """The ledger object for one decision. `outcome` is final here (sent/failed/...)."""
    channel = decision.channel
    handoff = decision.handoff if outcome == "sent" else None
    return {
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


def encode_line(line: dict[str, Any]) -> str:
    """Compact JSON, keys in insertion order: the same object gives the same bytes."""
    return orjson.dumps(line).decode()
