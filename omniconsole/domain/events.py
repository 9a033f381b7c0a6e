"""Events in the shape of the Segment tracking spec (SPEC §2), and their validation.

Validation is the engine's door: whatever passes it can be applied, stored whole and
serialised again, so no input can stop a replay or the live service further in.
Beyond SPEC §2's types it refuses, naming the field:

- ids and names (`userId`, `event`, `messageId`) with control characters (C0, DEL,
  C1, U+2028/U+2029) or longer than `MAX_ID_CHARS` / `MAX_MESSAGE_ID_CHARS`: they
  end up in SQL columns, URLs, mail headers and file names;
- a NUL character anywhere in `traits` or `properties` (keys and values): SQLite's
  text functions stop at NUL, and a phone number cut there is another customer's;
- `traits` / `properties` nested deeper than `MAX_DEPTH` or holding more than
  `MAX_VALUES` values (JSON serialisers refuse deep trees; profiles keep traits);
- timestamps outside `EARLIEST`..`LATEST`, so every time the engine computes from
  one (timers weeks ahead, cap windows days back) stays representable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from omniconsole.domain.timeutil import TimeFormatError, parse_timestamp

#: longest `userId` and `event` name accepted
MAX_ID_CHARS = 256
#: longest `messageId` (our own derived ids add a customer id and a journey step)
MAX_MESSAGE_ID_CHARS = 1024
#: deepest nesting of `traits` / `properties` (the object itself is level 1)
MAX_DEPTH = 32
#: most values (keys and list items, at every level) in `traits` or `properties`
MAX_VALUES = 10_000
#: the accepted time range: far enough from datetime's limits (years 1 and 9999) that
#: journey timers and cap windows computed from an event never overflow
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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


def event_from_dict(obj: object, line: int = 0, *, trees_checked: bool = False) -> Event:
    """Validate one decoded JSON value as an event, or raise EventError naming the field.

    `trees_checked`: the caller knows `traits` and `properties` pass `check_tree`
    (`parse_line` can tell from the raw line, which is much cheaper than walking them).
    """
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
    # (the usual id is short printable ASCII: checked in C before any call)
    if len(customer) > MAX_ID_CHARS or not (customer.isascii() and customer.isprintable()):
        check_text("userId", customer, MAX_ID_CHARS)
    stamp = obj.get("timestamp")
    if stamp is None:
        raise EventError("missing field 'timestamp'")
    if not isinstance(stamp, str):
        raise EventError("field 'timestamp' must be a string")
    try:
        at = parse_timestamp(stamp)
    except TimeFormatError as exc:
        raise EventError(f"field 'timestamp': {exc}") from None
    if not EARLIEST <= at < LATEST:
        check_time(at)
    name = obj.get("event")
    if kind == "track":
        if name is None:
            raise EventError("missing field 'event' (required for track)")
        if not isinstance(name, str) or not name:
            raise EventError("field 'event' must be a non-empty string")
        if len(name) > MAX_ID_CHARS or not (name.isascii() and name.isprintable()):
            check_text("event", name, MAX_ID_CHARS)
    elif name is not None and not isinstance(name, str):
        raise EventError("field 'event' must be a string")
    traits = obj.get("traits")
    if traits is None:
        traits = {}
    elif not isinstance(traits, dict):
        raise EventError("field 'traits' must be an object")
    elif traits and not trees_checked:
        check_tree("traits", traits)
    properties = obj.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise EventError("field 'properties' must be an object")
    elif properties and not trees_checked:
        check_tree("properties", properties)
    message_id = obj.get("messageId")
    if message_id is not None:
        if not isinstance(message_id, str):
            raise EventError("field 'messageId' must be a string")
        if len(message_id) > MAX_MESSAGE_ID_CHARS or not (
            message_id.isascii() and message_id.isprintable()
        ):
            check_text("messageId", message_id, MAX_MESSAGE_ID_CHARS)
    return Event(
        kind, customer, at, name if kind == "track" else None, traits, properties, message_id, line
    )


def check_event(event: Event) -> None:
    """Apply the door's checks to an event built in code (webhooks, adapter failures):
    what the live service stores must pass the same door as what it parses."""
    if event.kind not in ("identify", "track"):
        raise EventError(f"field 'type' must be 'identify' or 'track', got {event.kind!r}")
    if not event.customer:
        raise EventError("field 'userId' must be a non-empty string")
    check_text("userId", event.customer, MAX_ID_CHARS)
    check_time(event.at)
    if event.name is not None:
        check_text("event", event.name, MAX_ID_CHARS)
    if event.message_id is not None:
        check_text("messageId", event.message_id, MAX_MESSAGE_ID_CHARS)
    if event.traits:
        check_tree("traits", event.traits)
    if event.properties:
        check_tree("properties", event.properties)


def check_text(name: str, value: str, limit: int) -> None:
    """An id or name: at most `limit` characters, no control characters."""
    if len(value) > limit:
        raise EventError(f"field '{name}' is longer than {limit} characters")
    if value.isascii() and value.isprintable():
        return  # the usual id, checked in C
    bad = _CONTROL.search(value)
    if bad is not None:
        raise EventError(f"field '{name}' contains the control character U+{ord(bad.group()):04X}")


def check_time(at: datetime) -> None:
    """A time the engine can compute with (see `EARLIEST`, `LATEST`)."""
    if not EARLIEST <= at < LATEST:
        raise EventError(
            f"field 'timestamp' is out of range: {at.isoformat()} is not between "
            f"{EARLIEST.date()} and {LATEST.date()}"
        )


def check_tree(name: str, tree: dict[str, Any]) -> None:
    """`traits` / `properties`: no NUL in any key or string, bounded depth and size."""
    budget = [MAX_VALUES]
    _walk(tree, name, name, 1, budget)


def _walk(
    node: dict[str, Any] | list[Any], path: str, root: str, depth: int, budget: list[int]
) -> None:
    if depth > MAX_DEPTH:
        raise EventError(f"field '{root}' is nested deeper than {MAX_DEPTH} levels")
    budget[0] -= len(node)
    if budget[0] < 0:
        raise EventError(f"field '{root}' holds more than {MAX_VALUES} values")
    items = node.items() if node.__class__ is dict else enumerate(node)
    for key, value in items:
        if key.__class__ is str and "\x00" in key:
            raise EventError(f"field '{path}' has a key with a NUL character")
        cls = value.__class__
        if cls is str:
            if "\x00" in value:
                raise EventError(f"field '{path}.{key}' contains a NUL character")
        elif cls is dict or cls is list:
            _walk(value, f"{path}.{key}", root, depth + 1, budget)


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
        return event_from_dict(obj, line, trees_checked=_plain(raw))
    except EventError as exc:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return Rejected(line, str(exc), text.rstrip("\n"))


def _plain(raw: str | bytes) -> bool:
    """Whether a line's trees surely pass `check_tree`, from its text alone (much cheaper
    than walking them): a NUL in a JSON string is always written `\\u0000`; each level
    of nesting needs a bracket; `MAX_VALUES` values need twice as many characters."""
    if isinstance(raw, bytes):
        if b"\\u0000" in raw or len(raw) >= 2 * MAX_VALUES:
            return False
        return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
    if "\\u0000" in raw or len(raw) >= 2 * MAX_VALUES:
        return False
    return raw.count("{") + raw.count("[") <= MAX_DEPTH
