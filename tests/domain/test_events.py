"""Reading log lines (SPEC §2): good events are accepted in UTC; bad ones say why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from omniconsole.domain.events import Event, EventError, Rejected, event_from_dict, parse_line

DROP = object()  # a field to leave out of the line
GOOD: dict[str, Any] = {
    "type": "track",
    "userId": "c-1",
    "event": "Signed Up",
    "timestamp": "2026-01-05T10:00:05Z",
    "properties": {"plan": "pro"},
    "messageId": "e-2",
}


def line(**changes: Any) -> bytes:
    obj = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in obj.items() if v is not DROP})


def rejected(raw: str | bytes, number: int = 7) -> Rejected:
    parsed = parse_line(raw, number)
    assert isinstance(parsed, Rejected), f"expected a reject, got {parsed!r}"
    assert parsed.line == number
    return parsed


def test_a_good_track_event_is_accepted() -> None:
    event = parse_line(line(), 3)
    assert isinstance(event, Event)
    assert event.kind == "track"
    assert event.customer == "c-1"
    assert event.name == "Signed Up"
    assert event.at == datetime(2026, 1, 5, 10, 0, 5, tzinfo=UTC)
    assert event.properties == {"plan": "pro"}
    assert event.message_id == "e-2"
    assert event.line == 3


def test_a_good_identify_event_keeps_unknown_traits() -> None:
    raw = orjson.dumps(
        {
            "type": "identify",
            "userId": "c-1",
            "timestamp": "2026-01-05T10:00:00Z",
            "traits": {"email": "ana@example.com", "shoe_size": 39},
        }
    )
    event = parse_line(raw, 1)
    assert isinstance(event, Event)
    assert event.kind == "identify"
    assert event.name is None
    assert event.traits == {"email": "ana@example.com", "shoe_size": 39}
    assert event.message_id is None


def test_optional_fields_default_to_empty() -> None:
    event = parse_line(line(properties=DROP, messageId=DROP), 1)
    assert isinstance(event, Event)
    assert event.properties == {}
    assert event.traits == {}
    assert event.message_id is None


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2026-01-05T10:00:00Z", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05T10:00:00+00:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05T19:45:00+09:00", datetime(2026, 1, 5, 10, 45, tzinfo=UTC)),
        ("2026-01-05T06:50:00-05:00", datetime(2026, 1, 5, 11, 50, tzinfo=UTC)),
        ("2026-01-05T15:29:00+05:30", datetime(2026, 1, 5, 9, 59, tzinfo=UTC)),
        ("2026-01-05T23:30:00-02:00", datetime(2026, 1, 6, 1, 30, tzinfo=UTC)),
        ("2026-01-05T10:00:00.250Z", datetime(2026, 1, 5, 10, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_offsets_are_normalised_to_utc(stamp: str, utc: datetime) -> None:
    event = parse_line(line(timestamp=stamp), 1)
    assert isinstance(event, Event)
    assert event.at == utc
    assert event.at.utcoffset() == UTC.utcoffset(None)
    assert event.to_json()["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "track",', "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        ("42", "not a JSON object"),
        ("null", "not a JSON object"),
    ],
)
def test_lines_that_are_not_a_json_object_are_rejected(raw: str, words: str) -> None:
    reject = rejected(raw)
    assert words in reject.reason
    assert reject.raw == raw


@pytest.mark.parametrize("field", ["type", "userId", "timestamp", "event"])
def test_missing_required_field_is_rejected(field: str) -> None:
    reject = rejected(line(**{field: DROP}))
    assert "missing" in reject.reason
    assert f"'{field}'" in reject.reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "page"}, "type"),
        ({"type": 1}, "type"),
        ({"userId": 42}, "userId"),
        ({"userId": ""}, "userId"),
        ({"userId": ["c-1"]}, "userId"),
        ({"timestamp": 1767607200}, "timestamp"),
        ({"event": 7}, "event"),
        ({"event": ""}, "event"),
        ({"properties": [1, 2]}, "properties"),
        ({"properties": "x"}, "properties"),
        ({"traits": "vip"}, "traits"),
        ({"messageId": 12}, "messageId"),
    ],
)
def test_field_of_the_wrong_type_is_rejected(changes: dict[str, Any], field: str) -> None:
    reject = rejected(line(**changes))
    assert f"'{field}'" in reject.reason


@pytest.mark.parametrize(
    "stamp", ["yesterday", "2026-02-30T10:00:00Z", "2026-01-05T25:00:00Z", "", "10:00:00Z"]
)
def test_unparsable_timestamp_is_rejected(stamp: str) -> None:
    reject = rejected(line(timestamp=stamp))
    assert "'timestamp'" in reject.reason


@pytest.mark.parametrize("stamp", ["2026-01-05T10:00:00", "2026-01-05"])
def test_timestamp_without_offset_is_rejected(stamp: str) -> None:
    reject = rejected(line(timestamp=stamp))
    assert "'timestamp'" in reject.reason
    assert "offset" in reject.reason


def test_reject_keeps_the_raw_text_without_newline() -> None:
    raw = b'{"type": "track", "userId": 5}\n'
    reject = rejected(raw, 12)
    assert reject.raw == '{"type": "track", "userId": 5}'


def test_event_from_dict_names_the_field() -> None:
    with pytest.raises(EventError, match="userId"):
        event_from_dict({"type": "identify", "timestamp": "2026-01-05T10:00:00Z"})


def test_identify_needs_no_event_name() -> None:
    event = event_from_dict({"type": "identify", "userId": "u", "timestamp": "2026-01-05T10:00Z"})
    assert event.kind == "identify"
    assert event.at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
