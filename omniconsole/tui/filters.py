"""The Decisions view's filter language, as typed after `/` (pure; no widgets).

    /reason quiet_hours            /outcome:suppressed channel=sms
    /quiet_hours sms               a bare word is a known outcome, channel, reason,
                                   journey or step of this store
    /journey onboarding step welcome
    /customer c-000042
    /since 2026-03-05 until 2026-03-06T12:00      /last 6h   (before the store's clock)

In the Handoffs view, channel words are the pair: `/email whatsapp` (or `email>whatsapp`,
`from email`, `to sms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from omniconsole.adapters.store.console_rows import CHANNELS, OUTCOMES, DecisionFilter
from omniconsole.domain.timeutil import TimeFormatError, format_timestamp, parse_duration

__all__ = ["FIELDS", "ParsedFilter", "describe", "parse_filter"]

#: the filter's keys, in the order the filter bar shows them
FIELDS: tuple[str, ...] = ("outcome", "reason", "channel", "journey", "step", "customer")
_TIME_KEYS = ("since", "until", "last")
_ALIASES = {"from": "handoff_from", "to": "channel", "status": "outcome", "why": "reason"}


@dataclass(frozen=True, slots=True)
class ParsedFilter:
    """A filter read from text, and the words that could not be read (said to the user)."""

    filter: DecisionFilter
    unknown: tuple[str, ...] = ()


def _time(text: str) -> str | None:
    """`2026-03-05`, `2026-03-05T10:00`, `2026-03-05 10:00Z` as an ISO UTC time."""
    value = text.strip().upper().replace(" ", "T").rstrip("Z")
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H"):
        try:
            return datetime.strptime(value, pattern).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
    return None


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for word in text.replace(",", " ").split():
        for sep in (":", "="):
            key, found, value = word.partition(sep)
            if found and key.casefold() in (*FIELDS, *_TIME_KEYS, *_ALIASES) and value:
                out += [key, value]
                break
        else:
            for arrow in (">", "→"):
                if arrow in word:
                    source, _, to = word.partition(arrow)
                    out += ["from", source, "to", to]
                    break
            else:
                out.append(word)
    return out


def parse_filter(
    text: str,
    vocabulary: Mapping[str, Sequence[str]],
    *,
    now: datetime | None = None,
    handoffs: bool = False,
) -> ParsedFilter:
    """Read a filter typed after `/` (see the module docstring)."""
    values: dict[str, str | None] = {}
    unknown: list[str] = []
    words = _tokens(text)
    known = {
        "outcome": tuple(vocabulary.get("outcome", OUTCOMES)),
        "channel": tuple(vocabulary.get("channel", CHANNELS)),
        "reason": tuple(vocabulary.get("reason", ())),
        "journey": tuple(vocabulary.get("journey", ())),
        "step": tuple(vocabulary.get("step", ())),
    }
    i = 0
    while i < len(words):
        word = words[i]
        key = _ALIASES.get(word.casefold(), word.casefold())
        if key in (*FIELDS, "handoff_from", *_TIME_KEYS) and i + 1 < len(words):
            value = words[i + 1]
            i += 2
            if key in ("since", "until"):
                stamp = _time(value)
                if stamp is None:
                    unknown.append(f"{word} {value}")
                else:
                    values[key] = stamp
            elif key == "last":
                try:
                    span = parse_duration(value)
                except TimeFormatError:
                    unknown.append(f"last {value}")
                    continue
                if now is not None:
                    values["since"] = format_timestamp(now - span)
            elif key == "channel" and value.casefold() in ("none", "—", "-"):
                values["channel"] = ""
            else:
                values[key] = value
            continue
        i += 1
        lowered = word.casefold()
        if lowered in known["channel"] and handoffs and "handoff_from" not in values:
            values["handoff_from"] = lowered
            continue
        for field in ("outcome", "channel", "reason", "journey", "step"):
            if word in known[field] and field not in values:
                values[field] = word
                break
            if lowered in known[field] and field not in values:
                values[field] = lowered
                break
        else:
            unknown.append(word)
    result = DecisionFilter(
        outcome=values.get("outcome"),
        reason=values.get("reason"),
        channel=values.get("channel"),
        journey=values.get("journey"),
        step=values.get("step"),
        customer=values.get("customer"),
        since=values.get("since"),
        until=values.get("until"),
        handoffs=handoffs,
        handoff_from=values.get("handoff_from"),
    )
    return ParsedFilter(result, tuple(unknown))


def describe(where: DecisionFilter) -> str:
    """The filter as the filter bar shows it (`outcome=suppressed · since 03-05 00:00`)."""
    parts: list[str] = []
    if where.handoff_from is not None:
        parts.append(f"from {where.handoff_from}")
    for name in FIELDS:
        value = getattr(where, name)
        if value is not None:
            label = "to" if name == "channel" and where.handoffs else name
            parts.append(f"{label}={value or 'none'}")
    if where.since is not None:
        parts.append(f"since {where.since[:16].replace('T', ' ')}")
    if where.until is not None:
        parts.append(f"until {where.until[:16].replace('T', ' ')}")
    return " · ".join(parts)
