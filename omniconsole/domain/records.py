"""What the engine writes to its store: one typed record per kind of row.

These are the one home of the store's row shapes. The engine builds records by field
name; only the store (`omniconsole.adapters.store`) maps a record type to its table,
and it takes the columns from the record's own fields, so no column order lives
anywhere else. Records are `NamedTuple`s: typed and named, yet as cheap to build as a
tuple and handed to the database driver without conversion (one is built per decision).

Times are ISO 8601 UTC text (`2026-01-05T10:00:00Z`), which sorts as time.

(Over 400 lines: every row shape the store writes, in one place by design — the one
home of the store's record types, which both stores derive their tables from.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from omniconsole.domain.events import Event
from omniconsole.domain.messages import DeliveryResult
from omniconsole.domain.timeutil import format_timestamp, from_micros


class EventRecord(NamedTuple):
    """An applied event (`events`): duplicates and rejects are not here."""

    line: int  # log line number (0 for live ingest)
    customer: str
    at: str  # the event's own time
    applied_at: str  # the clock when applied (later than `at` when late)
    type: str  # 'identify' or 'track'
    name: str | None  # track event name
    message_id: str | None
    late: int  # 1 when applied at the clock rather than its own time
    payload: str  # the event as JSON


def event_record(
    line: int, event: Event, applied_at: datetime, late: bool, raw: bytes
) -> EventRecord:
    """The record of one applied event; `raw` is the line as read (or the event's JSON)."""
    stamp = format_timestamp(event.at)
    return EventRecord(
        line,
        event.customer,
        stamp,
        format_timestamp(applied_at) if late else stamp,
        event.kind,
        event.name,
        event.message_id,
        int(late),
        raw.decode("utf-8", "replace").rstrip("\r\n"),
    )


class RejectRecord(NamedTuple):
    """A line of the log that was not accepted, with why (`rejects`)."""

    line: int
    reason: str
    raw: str


class LedgerRecord(NamedTuple):
    """One governor decision (`ledger`); `line` is the exact ledger JSON line (SPEC §6)."""

    at: str
    ts: int  # `at` in microseconds since the epoch: sorts exactly
    customer: str
    seq: int  # the customer's decision sequence: with (ts, customer), the total order
    message_id: str
    journey: str
    step: str
    channel: str | None
    category: str
    outcome: str  # sent, deferred, suppressed, failed
    reason: str | None
    handoff_from: str | None  # JSON {"channel","action","at"}
    deferred_until: str | None  # for 'deferred': when it is decided again
    explanation: str  # the reason in words, for the support agent
    line: str


class ProfileRecord(NamedTuple):
    """A customer's profile as stored between activations (`profiles`)."""

    customer: str
    email: str | None
    phone: str | None
    updated_at: str
    next_due: str | None  # the earliest pending timer
    state: str  # JSON of `omniconsole.domain.profile.Profile`


class InstanceRecord(NamedTuple):
    """A journey instance with its next pending step (`journey_instances`)."""

    customer: str
    journey: str
    instance: int
    entered_at: str
    status: str  # active, converted, completed, expired
    ended_at: str | None
    next_step: str | None
    next_due: str | None


class CapUsageRecord(NamedTuple):
    """A capped send, as the governor counts it (`cap_usage`)."""

    message_id: str
    customer: str
    at: str
    channel: str


class InboxRecord(NamedTuple):
    """A message in the customer's in-app inbox (`inbox`)."""

    message_id: str
    customer: str
    at: str
    journey: str
    step: str
    subject: str
    body: str


class HealthRecord(NamedTuple):
    """A channel adapter's health as the runtime last saw it (`adapter_health`)."""

    channel: str
    state: str  # up, degraded, circuit_open, dry_run, not_configured
    detail: str
    updated_at: str


#: decided and committed; not answered yet (waiting for its first attempt, or in flight)
OUTBOX_PENDING = "pending"
#: a transient refusal (circuit open, 5xx, 429, connection refused, timeout before the
#: request left): tried again at `next_attempt_at`, until its category's maximum age
OUTBOX_RETRYING = "retrying"
#: timed out after the request left: the provider is asked whether it has the message
#: before any second attempt
OUTBOX_RECONCILING = "reconciling"
#: final: the provider took it
OUTBOX_SENT = "sent"
#: final: the provider refused it for good
OUTBOX_FAILED = "failed"
#: final: still not delivered at its category's maximum age (`adapter:expired`)
OUTBOX_EXPIRED = "expired"
#: final: timed out after the request left, and the provider cannot be asked (SMTP
#: after DATA): not sent again, so never twice (`adapter:unconfirmed`)
OUTBOX_UNCONFIRMED = "unconfirmed"
#: the sends still to be delivered (the backlog)
OUTBOX_WAITING = (OUTBOX_PENDING, OUTBOX_RETRYING, OUTBOX_RECONCILING)
OUTBOX_FINAL = (OUTBOX_SENT, OUTBOX_FAILED, OUTBOX_EXPIRED, OUTBOX_UNCONFIRMED)


class OutboxRecord(NamedTuple):
    """A live send and where it stands (`outbox`).

    The engine writes it `pending` in the checkpoint that holds the decision; the
    delivery runner then commits each attempt's outcome at once, on its own connection
    (`OutboxUpdate`); the checkpoint that writes the final ledger line rewrites the row
    with `settled` = 1, so after a crash the final outcomes whose ledger line is missing
    are exactly the rows with a final status and `settled` = 0.
    """

    message_id: str
    customer: str
    channel: str
    decided_at: str
    payload: str  # JSON of the `OutboxEntry`
    status: str  # see OUTBOX_*
    category: str = ""
    attempts: int = 0  # provider calls made (a call the circuit breaker refused is none)
    next_attempt_at: str = ""  # when a waiting send is due (ISO UTC)
    last_error: str = ""  # the last failure, e.g. "http_503: Service Unavailable"
    provider_id: str | None = None  # the provider's id of the message once sent
    attempted_at: str = ""  # when the last provider call started
    updated_at: str = ""
    settled: int = 0  # 1 once the final ledger line is committed
    result: str = ""  # JSON of the final `DeliveryResult`


def outbox_stamp(at: datetime) -> str:
    """A time as the outbox's delivery columns hold it: ISO UTC with microseconds always,
    so that comparing the text compares the times."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def result_json(result: DeliveryResult) -> str:
    """A final `DeliveryResult` as the outbox keeps it (`OutboxRecord.result`)."""
    return orjson.dumps(
        {
            "ok": result.ok,
            "provider_id": result.provider_id,
            "error_code": result.error_code,
            "permanent": result.permanent,
            "opted_out": result.opted_out,
            "detail": result.detail,
            "ambiguous": result.ambiguous,
        }
    ).decode()


def result_from_json(text: str) -> DeliveryResult | None:
    """The `DeliveryResult` `result_json` wrote, or None for an empty column."""
    if not text:
        return None
    raw = orjson.loads(text)
    return DeliveryResult(
        ok=bool(raw["ok"]),
        provider_id=raw.get("provider_id"),
        error_code=raw.get("error_code"),
        permanent=bool(raw.get("permanent")),
        opted_out=bool(raw.get("opted_out")),
        detail=str(raw.get("detail", "")),
        ambiguous=bool(raw.get("ambiguous")),
    )


@dataclass(frozen=True, slots=True)
class OutboxUpdate:
    """An attempt's outcome for one outbox row, as the delivery runner commits it."""

    message_id: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str
    provider_id: str | None
    attempted_at: str
    updated_at: str
    result: str = ""  # JSON of a final DeliveryResult (`result_json`); "" while waiting


class QuarantineRecord(NamedTuple):
    """A customer whose events could not be applied (`quarantine`): the engine stopped
    applying its events, and went on with everyone else's. The first reason is kept."""

    customer: str
    since: str  # the clock when it was quarantined
    reason: str  # the error, in one line


class CounterRecord(NamedTuple):
    """Decisions counted by kind (`counters`), added to what the store already counts.

    The engine's store writer counts every ledger record it writes and commits the
    counts with the checkpoint, so readers never fold the ledger. Empty text stands
    for none (no channel, no reason); `resend` is 1 for a fallback re-send (SPEC §5);
    `handoff` is `from>to` for a sent handoff, else empty.
    """

    journey: str
    step: str
    channel: str
    outcome: str
    reason: str
    resend: int
    handoff: str
    total: int


class HourCounterRecord(NamedTuple):
    """Decisions per simulated hour (`counters_hourly`), for sparklines and time ranges."""

    hour: str  # `2026-03-02T10`
    journey: str
    channel: str
    outcome: str
    reason: str
    total: int


class InstanceCounterRecord(NamedTuple):
    """Journey instances counted by what happened to them (`instance_counters`):
    `entered`, and the final statuses `converted`, `completed`, `expired`."""

    journey: str
    status: str
    total: int


StoreRecord = (
    EventRecord
    | RejectRecord
    | LedgerRecord
    | ProfileRecord
    | InstanceRecord
    | CapUsageRecord
    | InboxRecord
    | HealthRecord
    | OutboxRecord
    | QuarantineRecord
    | CounterRecord
    | HourCounterRecord
    | InstanceCounterRecord
)

#: Every record type, in the order a checkpoint writes its tables.
RECORD_TYPES: tuple[type[StoreRecord], ...] = (
    EventRecord,
    RejectRecord,
    LedgerRecord,
    ProfileRecord,
    InstanceRecord,
    CapUsageRecord,
    InboxRecord,
    HealthRecord,
    OutboxRecord,
    QuarantineRecord,
    CounterRecord,
    HourCounterRecord,
    InstanceCounterRecord,
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A decided live send, rendered, as the outbox keeps it until the provider answers.

    `line` is the ledger line the send will have when it goes out; `ts` and `seq` place
    it in the ledger's total order. The rest is what the adapter needs to send it again
    after a restart.
    """

    line: dict[str, Any]
    ts: int
    seq: int
    capped: bool
    explanation: str
    category: str
    recipient: dict[str, Any]
    subject: str
    text: str
    html: str | None
    handoff: dict[str, str] | None
    detail: str = ""

    @property
    def message_id(self) -> str:
        return str(self.line["message_id"])

    @property
    def customer(self) -> str:
        return str(self.line["customer"])

    @property
    def channel(self) -> str:
        return str(self.line["channel"])

    @property
    def at(self) -> str:
        return str(self.line["at"])

    def to_json(self) -> bytes:
        """The outbox payload."""
        return orjson.dumps(
            {
                "line": self.line,
                "ts": self.ts,
                "seq": self.seq,
                "capped": self.capped,
                "explanation": self.explanation,
                "detail": self.detail,
                "category": self.category,
                "recipient": self.recipient,
                "subject": self.subject,
                "text": self.text,
                "html": self.html,
                "handoff": self.handoff,
            }
        )

    @classmethod
    def from_json(cls, payload: bytes | str) -> OutboxEntry:
        """The entry `to_json` wrote."""
        raw = orjson.loads(payload)
        return cls(
            line=dict(raw["line"]),
            ts=int(raw["ts"]),
            seq=int(raw["seq"]),
            capped=bool(raw["capped"]),
            explanation=str(raw["explanation"]),
            category=str(raw["category"]),
            recipient=dict(raw["recipient"]),
            subject=str(raw["subject"]),
            text=str(raw["text"]),
            html=raw.get("html"),
            handoff=raw.get("handoff"),
            detail=str(raw.get("detail", "")),
        )

    def record(self, status: str) -> OutboxRecord:
        """This entry's row as first written: `status`, due at once."""
        return OutboxRecord(
            message_id=self.message_id,
            customer=self.customer,
            channel=self.channel,
            decided_at=self.at,
            payload=self.to_json().decode(),
            status=status,
            category=self.category,
            next_attempt_at=outbox_stamp(from_micros(self.ts)),
            updated_at=outbox_stamp(from_micros(self.ts)),
        )

    def settled(self, update: OutboxUpdate) -> OutboxRecord:
        """This entry's row with its final outcome, settled (its ledger line written)."""
        return OutboxRecord(
            message_id=self.message_id,
            customer=self.customer,
            channel=self.channel,
            decided_at=self.at,
            payload=self.to_json().decode(),
            status=update.status,
            category=self.category,
            attempts=update.attempts,
            next_attempt_at=update.next_attempt_at,
            last_error=update.last_error,
            provider_id=update.provider_id,
            attempted_at=update.attempted_at,
            updated_at=update.updated_at,
            settled=1,
            result=update.result,
        )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as the delivery runner reads it: the send and where it stands."""

    entry: OutboxEntry
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str
    provider_id: str | None
    attempted_at: str
    updated_at: str
    result: str = ""

    @classmethod
    def from_columns(cls, raw: Sequence[Any]) -> OutboxRow:
        """The row from the columns `OUTBOX_ROW_COLUMNS` names, in that order."""
        return cls(
            entry=OutboxEntry.from_json(raw[0]),
            status=str(raw[1]),
            attempts=int(raw[2]),
            next_attempt_at=str(raw[3]),
            last_error=str(raw[4]),
            provider_id=None if raw[5] is None else str(raw[5]),
            attempted_at=str(raw[6]),
            updated_at=str(raw[7]),
            result=str(raw[8]),
        )


#: the outbox columns both stores select for an `OutboxRow`, in `from_columns`' order
OUTBOX_ROW_COLUMNS = (
    "payload, status, attempts, next_attempt_at, last_error, provider_id, attempted_at,"
    " updated_at, result"
)
