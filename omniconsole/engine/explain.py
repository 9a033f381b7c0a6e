"""`omniconsole explain`: the causal chain of one message, or of one customer's messages.

It reads one customer's applied events and ledger from a store (a partitioned store
reads as one), the config the run recorded in `meta`, and re-runs that customer alone
with a trace (`omniconsole.domain.explanation`). The chain is only told when the
re-run writes exactly the ledger lines the store holds for the customer; otherwise it
says so and shows the stored lines with the words the engine stored, nothing more.

`explain_message` and `explain_customer` return JSON-ready data; `explain_text` words it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from omniconsole.adapters.store import store_at
from omniconsole.adapters.store.base import StoreReader
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, JourneyDef, Policy
from omniconsole.domain.decision_trace import describe_cap
from omniconsole.domain.events import Rejected, parse_line
from omniconsole.domain.explanation import (
    CustomerTrace,
    DecisionTrace,
    InstanceStory,
    step_fate,
    trace_customer,
)
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.records import EventRecord, LedgerRecord
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp


class ExplainError(Exception):
    """Nothing to explain (no such store, customer or message); one line says which."""


@dataclass(slots=True)
class _Run:
    """A customer re-run against what the store holds."""

    config: EngineConfig
    trace: CustomerTrace
    stored: list[LedgerRecord]
    verified: bool
    mismatch: str | None


def _config(meta: dict[str, str]) -> EngineConfig:
    try:
        policy = Policy.from_json(orjson.loads(meta["policy"]))
        journeys = tuple(JourneyDef.from_json(j) for j in orjson.loads(meta["journeys"]))
    except KeyError:
        raise ExplainError("the store has no recorded config (meta policy/journeys)") from None
    return EngineConfig(policy, journeys, Path(meta.get("config_dir", "")))


def _available(meta: dict[str, str]) -> frozenset[Channel] | None:
    if meta.get("mode") != "serve":
        return None
    channels = orjson.loads(meta.get("channels", "{}"))
    return frozenset(Channel(c) for c, v in channels.items() if v.get("configured"))


def _same(stored: LedgerRecord, rerun: str) -> bool:
    if stored.line == rerun:
        return True
    # live: the decision was to send, then the provider failed it (`adapter:<code>`)
    line = orjson.loads(rerun)
    if stored.outcome == "failed" and line["outcome"] == "sent":
        line.update(outcome="failed", reason=stored.reason, handoff_from=None)
        return orjson.dumps(line).decode() == stored.line
    return False


def _read(
    reader: StoreReader, customer: str
) -> tuple[dict[str, str], list[EventRecord], list[LedgerRecord]]:
    """Meta, events and ledger of `customer` from one checkpoint: a store being written
    (a running replay, the live service) may commit between two reads, so read again
    until the run facts before and after agree."""
    for _ in range(5):
        meta = reader.meta()
        events = reader.customer_events(customer)
        stored = reader.customer_ledger(customer)
        if reader.meta() == meta:
            break
    return meta, events, stored


def _rerun(reader: StoreReader, customer: str) -> _Run:
    meta, events, stored = _read(reader, customer)
    config = _config(meta)
    timed: list[TimedEvent] = []
    for record in events:
        parsed = parse_line(record.payload, record.line)
        if isinstance(parsed, Rejected):  # stored events were accepted once; be safe anyway
            raise ExplainError(f"stored event of {customer} unreadable: {parsed.reason}")
        timed.append(TimedEvent(parse_timestamp(record.applied_at), parsed))
    failed = frozenset(r.message_id for r in stored if r.outcome == "failed")
    clock = meta.get("clock")
    horizon = parse_timestamp(clock) if clock else None
    trace = trace_customer(
        config, customer, timed, horizon, available=_available(meta), failed=failed
    )
    rerun = trace.lines()
    mismatch = None
    for n, (have, again) in enumerate(zip(stored, rerun, strict=False), start=1):
        if not _same(have, again):
            mismatch = f"ledger line {n} of the customer differs: stored {have.line} re-run {again}"
            break
    if mismatch is None and len(stored) != len(rerun):
        mismatch = (
            f"the store holds {len(stored)} ledger lines for the customer, the re-run "
            f"writes {len(rerun)}"
        )
    if mismatch is None and trace.disagreements:
        mismatch = f"the explanation is incomplete: {trace.disagreements[0]}"
    return _Run(config, trace, stored, mismatch is None, mismatch)


def _parse_message_id(message_id: str, config: EngineConfig) -> tuple[str, str, int, str] | None:
    base = message_id.removesuffix(":fallback")
    parts = base.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    customer, journey, number, step = parts
    names = {j.name: j for j in config.journeys}
    if journey not in names or step not in {s.name for s in names[journey].steps}:
        return None
    return customer, journey, int(number), step


def _open(db: Path | str) -> StoreReader:
    store = store_at(db)
    if not store.exists():
        raise ExplainError(f"store not found: {store.describe()}")
    return store.reader()


def explain(db: Path | str, target: str, journey: str | None = None) -> dict[str, Any]:
    """Explain `target`: a message id (sent or never created) or a customer."""
    with contextlib.closing(_open(db)) as reader:
        config = _config(reader.meta())
        parsed = _parse_message_id(target, config)
        customer = parsed[0] if parsed is not None else reader.message_customer(target)
        if customer is not None and reader.customer_events(customer):
            return explain_message(reader, customer, target)
        if reader.customer_events(target):
            return explain_customer(reader, target, journey)
    # named as the store names itself: a URL's password is never printed
    raise ExplainError(f"no customer and no message {target!r} in {store_at(db).describe()}")


def explain_customer_at(db: Path | str, customer: str) -> dict[str, Any]:
    """`explain_customer` on the store at `db` (the console's customer pane)."""
    with contextlib.closing(_open(db)) as reader:
        return explain_customer(reader, customer)


def explain_message(reader: StoreReader, customer: str, message_id: str) -> dict[str, Any]:
    """The chain of one message of `customer` (or why it was never created)."""
    run = _rerun(reader, customer)
    out: dict[str, Any] = {"kind": "message", "message_id": message_id, "customer": customer}
    out.update(_verification(run))
    if not run.verified:
        out["stored"] = [_stored(r) for r in run.stored if r.message_id == message_id]
        return out
    decisions = [d for d in run.trace.decisions if d.message_id == message_id]
    parsed = _parse_message_id(message_id, run.config)
    if decisions:
        first = decisions[0]
        out["journey"], out["instance"], out["step"] = first.journey, first.instance, first.step
        story = run.trace.instances.get((first.journey, first.instance))
        out["instance_story"] = None if story is None else _story(story)
        out["decisions"] = [_decision(d) for d in decisions]
        out["final"] = _final(decisions[-1], run.stored)
        return out
    if parsed is None:
        raise ExplainError(f"{message_id!r} is not a message id of this store's journeys")
    _, journey_name, number, step = parsed
    journey = next(j for j in run.config.journeys if j.name == journey_name)
    story = run.trace.instances.get((journey_name, number))
    out["journey"], out["instance"], out["step"] = journey_name, number, step
    out["instance_story"] = None if story is None else _story(story)
    out["decisions"] = []
    if message_id.endswith(":fallback"):
        why = "no re-send: no Message Failed named this step's send while a re-send was possible"
    else:
        why = step_fate(run.trace, journey, number, step)
    out["final"] = {"outcome": "never created", "why": why}
    return out


def explain_customer(
    reader: StoreReader, customer: str, journey: str | None = None
) -> dict[str, Any]:
    """Every journey instance of `customer` (or of one journey) and each message's chain."""
    run = _rerun(reader, customer)
    out: dict[str, Any] = {"kind": "customer", "customer": customer, "journey": journey}
    out.update(_verification(run))
    if not run.verified:
        out["stored"] = [_stored(r) for r in run.stored if journey in (None, r.journey)]
        return out
    journeys = {j.name: j for j in run.config.journeys}
    instances = []
    for (name, number), story in sorted(
        run.trace.instances.items(), key=lambda kv: kv[1].entered_at
    ):
        if journey not in (None, name):
            continue
        entry = _story(story)
        entry["steps"] = {}
        for step in journeys[name].steps:
            decided = [d for d in run.trace.decisions
                       if (d.journey, d.instance, d.step) == (name, number, step.name)]  # fmt: skip
            entry["steps"][step.name] = (
                _final(decided[-1], run.stored) if decided
                else {"outcome": "never created",
                      "why": step_fate(run.trace, journeys[name], number, step.name)}
            )  # fmt: skip
        instances.append(entry)
    out["instances"] = instances
    out["refused_entries"] = [
        {"at": format_timestamp(r.at), "journey": r.journey, "event": r.cause, "why": r.words}
        for r in run.trace.refusals
        if journey in (None, r.journey)
    ]
    messages: dict[str, list[DecisionTrace]] = {}
    for d in run.trace.decisions:
        if journey in (None, d.journey):
            messages.setdefault(d.message_id, []).append(d)
    out["messages"] = [
        {
            "message_id": m,
            "decisions": [_decision(d) for d in ds],
            "final": _final(ds[-1], run.stored),
        }
        for m, ds in messages.items()
    ]
    return out


# ---- JSON shapes ----


def _verification(run: _Run) -> dict[str, Any]:
    return {
        "events": run.trace.events,
        "ledger_lines": len(run.stored),
        "verified": run.verified,
        "mismatch": run.mismatch,
    }


def _stored(record: LedgerRecord) -> dict[str, Any]:
    return {"line": orjson.loads(record.line), "explanation": record.explanation}


def _when(at: datetime | None) -> str | None:
    return None if at is None else format_timestamp(at)


def _story(story: InstanceStory) -> dict[str, Any]:
    return {
        "journey": story.journey,
        "instance": story.number,
        "entered_at": _when(story.entered_at),
        "entered_by": story.cause,
        "arm": story.arm,
        "status": story.status,
        "ended_at": _when(story.ended_at),
        "ended_by": story.ended_by,
        "notes": [{"at": _when(n.at), "step": n.step, "words": n.words} for n in story.notes],
    }


def _decision(d: DecisionTrace) -> dict[str, Any]:
    stages = d.stages
    return {
        "at": _when(d.at),
        "trigger": d.trigger,
        "timezone": d.timezone,
        "arm": d.arm,
        "channels": [
            {"channel": c.channel, "usable": c.usable, "why": c.words} for c in stages.channels
        ],
        "chosen": stages.chosen,
        "suppression": stages.suppressions,
        "quiet_hours": stages.quiet_hours,
        "caps": [
            {
                "cap": c.reason,
                "limit": c.limit,
                "full": c.full,
                "words": describe_cap(c),
                "counted": [
                    {"message_id": s.message_id, "channel": s.channel, "at": _when(s.at)}
                    for s in c.counted
                ],
            }
            for c in stages.caps
        ],
        "outcome": d.outcome,
        "reason": d.reason,
        "until": _when(d.until),
        "governor": d.explanation,
        "line": orjson.loads(d.line),
    }


def _final(d: DecisionTrace, stored: list[LedgerRecord]) -> dict[str, Any]:
    line = orjson.loads(d.line)
    final = {"outcome": d.outcome, "reason": d.reason, "channel": line["channel"],
             "at": _when(d.at), "why": d.explanation}  # fmt: skip
    # live: the send was decided, then the provider refused it (the stored line says so)
    failed = [r for r in stored if r.message_id == d.message_id and r.outcome == "failed"]
    if d.outcome == "sent" and failed:
        final.update(outcome="failed", reason=failed[-1].reason,
                     why=f"{d.explanation}; then the provider failed it: {failed[-1].explanation}")  # fmt: skip
    return final
