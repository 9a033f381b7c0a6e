"""The customer timeline in words: events, messages as sent, deliveries, skipped steps.

Pure functions over a `CustomerRecord` (no widgets). For every message the agent
sees why it was sent, deferred or suppressed (the engine's own explanation), what it
said — as it went out (the outbox, the in-app inbox) or, for a replay that only
recorded its decisions, rendered from the run's templates — and what the provider
said of it (delivered, failed with a code, the provider's id). Engagement events
name the message and the link; a step a journey skipped says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from omniconsole.adapters.store.console_rows import CustomerRecord, DecisionRow, EventRow
from omniconsole.domain.templates import TemplateError, TemplateSet, load_templates
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp
from omniconsole.tui.present import short, span

__all__ = ["TimelineItem", "message_content", "timeline"]

_DELIVERY = frozenset({"Message Delivered", "Message Failed"})
_ENGAGEMENT = {"Message Opened": "opened", "Message Clicked": "clicked"}


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of the customer timeline, with an optional second line (`detail`)."""

    at: str
    kind: Literal["event", "message", "skipped"]
    title: str
    channel: str | None = None
    outcome: str | None = None
    reason: str | None = None
    why: str = ""
    message_id: str | None = None
    detail: str = ""


@lru_cache(maxsize=8)
def _templates(config_dir: str) -> TemplateSet | None:
    try:
        return load_templates(Path(config_dir) / "templates")
    except (TemplateError, OSError):
        return None


def _props(e: EventRow) -> Mapping[str, Any]:
    props = e.payload.get("properties")
    return props if isinstance(props, Mapping) else {}


def _entry_properties(record: CustomerRecord, d: DecisionRow) -> Mapping[str, Any]:
    """The properties of the event that started the decision's journey instance."""
    instance = d.message_id.split(":")[-2] if d.message_id.count(":") >= 3 else ""
    if record.profile is not None:
        for inst in record.profile.instances:
            if inst.journey == d.journey and str(inst.number) == instance:
                return inst.properties
    definition = record.journeys.get(d.journey)
    entered = next(
        (i.entered_at for i in record.instances
         if i.journey == d.journey and str(i.instance) == instance),
        None,
    )  # fmt: skip
    for e in record.events:
        if definition is not None and e.name == definition.entry_event and e.applied_at == entered:
            return _props(e)
    return {}


def message_content(record: CustomerRecord, d: DecisionRow) -> tuple[str, str, str] | None:
    """(subject, text, how we know it) of a decided message; None when it cannot be said.

    Live sends are shown as they went out (outbox, inbox); a replay's, rendered from
    the templates of the config it ran with."""
    sent = record.outbox.get(d.message_id)
    if sent is not None and (sent.subject or sent.text):
        return sent.subject, sent.text, "as sent"
    inbox = record.inbox.get(d.message_id)
    if inbox is not None:
        return inbox.subject, inbox.body, "in their inbox"
    if d.channel is None or record.config_dir is None or record.profile is None:
        return None
    templates = _templates(record.config_dir)
    if templates is None or not templates.covers(d.journey, d.step, d.channel):
        return None
    try:
        rendered = templates.render(
            d.journey, d.step, d.channel, record.profile.recipient(), d.handoff,
            _entry_properties(record, d),
        )  # fmt: skip
    except (TemplateError, KeyError, ValueError):
        return None
    return rendered.subject, rendered.text, "rendered from the templates"


def _delivery(events: list[EventRow]) -> str:
    """What the provider said of a message, from its webhook events (newest first)."""
    out: list[str] = []
    for e in events:
        props = _props(e)
        provider = props.get("provider_message_id")
        ref = f" ({provider})" if provider else ""
        when = e.applied_at[5:16].replace("T", " ")
        if e.name == "Message Delivered":
            out.append(f"delivered {when}{ref}")
        else:
            code = props.get("error_code") or props.get("code") or "no code"
            status = props.get("provider_status")
            out.append(f"failed {when}: code {code}{f', {status}' if status else ''}{ref}")
    return "; ".join(out)


def _event_title(e: EventRow, record: CustomerRecord) -> str:
    if e.type == "identify":
        traits = e.payload.get("traits")
        keys = ", ".join(sorted(traits)) if isinstance(traits, Mapping) else ""
        return f"identify {keys}".strip()
    props = _props(e)
    if e.name in _ENGAGEMENT:
        what = f"{_ENGAGEMENT[e.name]} their {props.get('channel', '?')}"
        message_id = props.get("message_id")
        if isinstance(message_id, str) and message_id:
            what += f" {message_id}"
        link = props.get("url") or props.get("link")
        if link:
            what += f" · link {short(link, 60)}"
        return what
    detail = " ".join(f"{k}={short(v, 24)}" for k, v in props.items())
    return f"{e.name} {detail}".strip()


def _lateness(e: EventRow) -> str:
    """'arrived late…' when the event was applied well after it happened.

    Live, every event is applied a moment after its own timestamp: that is not worth
    an agent's attention, so only a delay of a second or more is said."""
    if not e.late:
        return ""
    try:
        gap = parse_timestamp(e.applied_at) - parse_timestamp(e.at)
    except ValueError:
        return ""
    if gap.total_seconds() < 1:
        return ""
    happened = e.at[5:16].replace("T", " ")
    return f"arrived late: happened {happened}, applied {span(gap.total_seconds())} later"


def _skipped(record: CustomerRecord, decided: set[str]) -> list[TimelineItem]:
    """Steps a journey instance skipped because an event it waits not to see came."""
    out: list[TimelineItem] = []
    clock = record.clock
    for inst in record.instances:
        definition = record.journeys.get(inst.journey)
        if definition is None:
            continue
        entered = parse_timestamp(inst.entered_at)
        for step in definition.steps:
            if not step.unless_since_entry or step.after is None:
                continue
            due = format_timestamp(entered + step.after)
            message_id = f"{record.customer}:{inst.journey}:{inst.instance}:{step.name}"
            if message_id in decided or (clock is not None and due > clock):
                continue
            if inst.ended_at is not None and inst.ended_at < due:
                continue  # the instance had ended: the step was never due
            seen = [
                e for e in record.events
                if e.name in step.unless_since_entry and inst.entered_at <= e.applied_at <= due
            ]  # fmt: skip
            if not seen:
                continue
            first = min(seen, key=lambda e: e.applied_at)
            out.append(
                TimelineItem(
                    due, "skipped", f"{inst.journey}.{step.name}",
                    why=f"{step.name} skipped: {first.name} since entry "
                        f"({first.applied_at[5:16].replace('T', ' ')})",
                    message_id=message_id,
                )
            )  # fmt: skip
    return out


def timeline(record: CustomerRecord) -> tuple[TimelineItem, ...]:
    """Events, decisions and skipped steps, newest first; at one instant the decision
    follows the event that caused it."""
    deliveries: dict[str, list[EventRow]] = {}
    for e in record.events:
        message_id = _props(e).get("message_id")
        if e.name in _DELIVERY and isinstance(message_id, str):
            deliveries.setdefault(message_id, []).append(e)
    items: list[tuple[str, int, int, TimelineItem]] = []
    for e in record.events:
        items.append(
            (e.applied_at, 0, e.id,
             TimelineItem(e.applied_at, "event", _event_title(e, record), why=_lateness(e)))
        )  # fmt: skip
    for d in record.decisions:
        detail = ""
        content = message_content(record, d) if d.outcome in ("sent", "failed") else None
        if content is not None:
            subject, text, source = content
            detail = f"“{short(subject, 60)}” {short(' '.join(text.split()), 120)} ({source})"
        delivered = _delivery(deliveries.get(d.message_id, []))
        if delivered:
            detail = f"{detail} · {delivered}" if detail else delivered
        items.append(
            (
                d.at, 1, d.seq,
                TimelineItem(
                    d.at, "message", f"{d.journey}.{d.step}", channel=d.channel,
                    outcome=d.outcome, reason=d.reason, why=d.explanation,
                    message_id=d.message_id, detail=detail,
                ),
            )
        )  # fmt: skip
    decided = {d.message_id for d in record.decisions}
    for item in _skipped(record, decided):
        items.append((item.at, 2, 0, item))
    items.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
    return tuple(t[3] for t in items)
