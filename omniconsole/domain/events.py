"""Events in the shape of the Segment tracking spec (SPEC §2), and their validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from omniconsole.domain.timeutil import TimeFormatError, parse_timestamp


class EventError(ValueError):
    """An event that cannot be accepted; the message says which field and why."""


@dataclass(slots=True)
class Event:
    """One accepted event. `at` is the event's own timestamp, in UTC.

    Treat it as immutable. It is not `frozen` because a frozen dataclass sets each field
    through `object.__setattr__`, which makes building one ~4x slower, and one is built
    per log line; it was never hashable anyway (`traits` and `properties` are dicts).
    """

    kind: str  # "identify" or "track"
    customer: str
    at: datetime
    name: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        """The Segment-shaped dict this event came from (normalised)."""
        out: dict[str, Any] = {"type": self.kind, "userId": self.customer}
        if self.name is not None:
            out["event"] = self.name
        out["timestamp"] = self.at.strftime("%Y-%m-%dT%H:%M:%S") + (
            f".{self.at.microsecond:06d}Z" if self.at.microsecond else "Z"
        )
        if self.traits:
            out["traits"] = self.traits
        if self.properties:
            out["properties"] = self.properties
        if self.message_id is not None:
            out["messageId"] = self.message_id
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """A log line that was not accepted: its number, the reason, and the raw text."""

    line: int
    reason: str
    raw: str


def event_from_dict(obj: object, line: int = 0) -> Event:
    """Validate one decoded JSON value as an event, or raise EventError naming the field."""
    if not isinstance(obj, dict):
        raise EventError("not a JSON object")
    kind = obj.get("type")
    if kind is None:
        raise EventError("missing field 'type'")
    if kind not in ("identify", "track"):
        raise EventError(f"field 'type' must be 'identify' or 'track', got {kind!r}")
    customer = obj.get("userId")
    if customer is None:
        raise EventError("missing field 'userId'")
    if not isinstance(customer, str) or not customer:
        raise EventError("field 'userId' must be a non-empty string")
    stamp = obj.get("timestamp")
    if stamp is None:
        raise EventError("missing field 'timestamp'")
    if not isinstance(stamp, str):
        raise EventError("field 'timestamp' must be a string")
    try:
        at = parse_timestamp(stamp)
    except TimeFormatError as exc:
        raise EventError(f"field 'timestamp': {exc}") from None
    name = obj.get("event")
    if kind == "track":
        if name is None:
            raise EventError("missing field 'event' (required for track)")
        if not isinstance(name, str) or not name:
            raise EventError("field 'event' must be a non-empty string")
    elif name is not None and not isinstance(name, str):
        raise EventError("field 'event' must be a string")
    traits = obj.get("traits")
    if traits is None:
        traits = {}
    elif not isinstance(traits, dict):
        raise EventError("field 'traits' must be an object")
    properties = obj.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise EventError("field 'properties' must be an object")
    message_id = obj.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise EventError("field 'messageId' must be a string")
    return Event(
        kind, customer, at, name if kind == "track" else None, traits, properties, message_id, line
    )


def parse_line(raw: str | bytes, line: int) -> Event | Rejected:
    """Parse one JSON Lines line into an Event, or a Rejected saying why not."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return Rejected(
            line, f"not valid JSON: {exc.args[0] if exc.args else exc}", text.rstrip("\n")
        )
    try:
        return event_from_dict(obj, line)
    except EventError as exc:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return Rejected(line, str(exc), text.rstrip("\n"))
