"""The console's words: what the data layer's records mean, said for an operator.

Pure functions from the typed records of `omniconsole.adapters.store.console_rows`
(and the domain's own types) to text and small display records. The screens lay
them out; nothing here touches widgets or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from omniconsole.adapters.store.console_rows import (
    CustomerRecord,
    StoreStatus,
)
from omniconsole.adapters.store.progress import Progress
from omniconsole.domain.config import Policy
from omniconsole.domain.profile import consent_report
from omniconsole.domain.timeutil import format_duration

__all__ = [
    "HEALTH_LABEL",
    "ConsentLine",
    "channel_lines",
    "consents",
    "header_parts",
    "policy_lines",
    "profile_facts",
    "short",
    "span",
    "status_message",
]

HEALTH_LABEL: Mapping[str, str] = {
    "up": "up",
    "degraded": "degraded",
    "circuit_open": "circuit open",
    "dry_run": "dry-run",
    "not_configured": "not configured",
}

#: Profile state keys shown elsewhere (or internal): not listed under "Profile".
_STATE_HIDDEN = frozenset(
    {
        "customer",
        "traits",
        "instances",
        "timers",
        "sent",
        "decision_seq",
        "timer_seq",
        "instance_counter",
        "recent_messages",
        "opted_out",
        "channel_state",  # the Channels section says what it means
    }
)


def short(value: object, width: int = 60) -> str:
    """`value` as text, cut to `width` characters with an ellipsis."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def span(seconds: float) -> str:
    """A duration as an agent says it: `40 s`, `12 min`, `3 h 5 min`, `4 days`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def status_message(status: StoreStatus) -> str:
    """Why the store cannot be shown yet, in words."""
    where = status.path
    if status.state == "missing":
        return (
            f"Waiting for store: {where} does not exist yet. "
            "Start a replay or the service with --db pointing here."
        )
    if status.state == "error":
        return f"{where} is not an omniconsole store ({status.detail})"
    detail = status.detail
    if "locked" in detail or "busy" in detail:
        return f"Waiting for store: {where} is busy…"
    if detail:
        return f"Waiting for store: {detail}"
    return f"Waiting for store: {where} is being created…"


def policy_lines(policy: Policy | None) -> list[tuple[str, str]]:
    """The policy in force as short (label, value) lines that wrap at word boundaries."""
    if policy is None:
        return [("policy", "not in the store yet (the engine writes it at its first checkpoint)")]
    lines: list[tuple[str, str]] = []
    for cap in policy.caps:
        where = "all channels" if cap.scope == "all" else cap.scope
        lines.append(
            (
                f"cap {cap.reason.removeprefix('cap:')}",
                f"{cap.limit} per {cap.label or format_duration(cap.window)} on {where}",
            )
        )
    lines.append(("capped", ", ".join(sorted(policy.capped_categories)) or "nothing"))
    if policy.uncapped_channels:
        lines.append(("never capped", ", ".join(sorted(policy.uncapped_channels))))
    qh = policy.quiet_hours
    if qh is not None:
        lines.append(
            (
                "quiet hours",
                f"{qh.start.strftime('%H:%M')}–{qh.end.strftime('%H:%M')} local on "
                f"{', '.join(sorted(qh.channels))} ({', '.join(sorted(qh.categories))})",
            )
        )
    for s in policy.suppressions:
        lines.append(
            (
                s.reason,
                f"no {', '.join(sorted(s.categories))} within "
                f"{format_duration(s.window)} of {s.after_event}",
            )
        )
    lines.append(("deferral", f"given up {format_duration(policy.max_deferral)} after due"))
    return lines


@dataclass(frozen=True, slots=True)
class ConsentLine:
    """Whether a channel can reach the customer (SPEC §3), and why not, in words."""

    channel: str
    address: str | None
    opted_out: bool
    usable: bool
    note: str


def consents(record: CustomerRecord) -> tuple[ConsentLine, ...]:
    """Per channel: the address, the opt-out and whether it is usable — by the domain's
    own rules (`omniconsole.domain.profile.consent_report`), never a copy of them."""
    if record.profile is None:
        return ()
    return tuple(
        ConsentLine(c.channel, None if c.address is None else str(c.address), c.opted_out,
                    c.usable, c.why)
        for c in consent_report(record.profile)
    )  # fmt: skip


def channel_lines(record: CustomerRecord) -> list[tuple[str, str]]:
    """Topics, affinity and best hour as (label, text), when the run has channel rules."""
    summary = record.channels
    if summary is None:
        return []
    lines: list[tuple[str, str]] = []
    for topic in summary.topics:
        if topic.transactional:
            state = "always on (transactional)"
        else:
            off = [c for c, on in topic.channels if not on]
            on = [c for c, is_on in topic.channels if is_on]
            state = "on" if not off else "off" if not on else f"off on {', '.join(off)}"
        lines.append((f"topic {topic.name}", f"{state} — {topic.label}"))
    if summary.affinity:
        lines.append(
            ("affinity", ", ".join(f"{s.channel} {s.value:.2f} ({s.engaged}/{s.sent})"
                                   for s in summary.affinity))
        )  # fmt: skip
    best = summary.best_hour
    if best is not None:
        lines.append(("best hour", f"{best.hour:02d}:00 local, {best.why()}"))
    if summary.open_digests:
        lines.append(("digests", f"{summary.open_digests} collecting"))
    return lines


def _describe_state(key: str, value: object) -> str:
    if key == "engagement" and isinstance(value, Mapping):
        return f"{value.get('action')} on {value.get('channel')} at {value.get('at')}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return short(value, 80)


def profile_facts(record: CustomerRecord) -> list[tuple[str, str]]:
    """Traits, then the profile's other facts (engagement, opt-outs…), as (label, text)."""
    traits = record.state.get("traits")
    traits = traits if isinstance(traits, Mapping) else {}
    facts = [(str(k), short(v, 80)) for k, v in sorted(traits.items())]
    for key, value in record.state.items():
        if key in _STATE_HIDDEN or value in (None, [], {}, ""):
            continue
        facts.append((str(key).replace("_", " "), _describe_state(str(key), value)))
    return facts


#: a run's `status` as the header says it
_RUN_STATE = {"until": "at --until", "stopped": "stopped"}


def header_parts(status: StoreStatus, progress: Progress | None, store: str) -> list[str]:
    """The status line's facts, most needed first (a narrow screen keeps the first).

    Everything but the progress is the committed cut's: the clock is the time up to
    which every decision listed below it is decided. The progress (a running replay's
    reading position, said about once a second) is marked as such.
    """
    parts = [f"{status.decisions:,} decisions"]
    said = _RUN_STATE.get(status.status or "", status.status)
    state = " ".join(p for p in (status.mode, said) if p)
    parts.append(state or "store")
    if status.clock:
        label = "sim " if status.mode == "replay" else ""
        parts.append(f"{label}{status.clock[:10]} {status.clock[11:16]}Z")
    if status.checkpoint_line is not None and status.mode == "replay":
        parts.append(f"line {status.checkpoint_line:,}")
    if progress is not None and progress.fresh() and status.status == "running":
        ahead = f"reading line {progress.line:,}"
        if progress.fraction is not None:
            ahead += f" ({progress.fraction:.0%})"
        if progress.clock:
            ahead += f" at {progress.clock[5:16].replace('T', ' ')}"
        parts.append(ahead)
    parts.append(f"{status.customers:,} customers")
    parts.append(store)
    return parts
