"""Read-only, synchronous queries over the store for the console (and any other reader).

The engine is the one writer; readers open the SQLite file read-only (`mode=ro`) and,
thanks to WAL, never block it. Every method returns plain frozen dataclasses and
limits what it returns, so a poll stays cheap on a store of a million events: counts
that would need a full scan of the ledger are kept incrementally by tailing
`ledger.id` (the ledger is append-only; in a partitioned store, each part's).

A `StoreReader` is used by one thread at a time (the console's poll worker); it opens
its connection lazily and reopens it when the file appears, disappears or is
recreated. Nothing here imports textual.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from omniconsole.adapters.store.parts import PartsError, attach_parts, read_part_names
from omniconsole.domain.profile import Profile, consent_report

__all__ = [
    "DEFAULT_CAPS",
    "CapLimit",
    "CapState",
    "CapsOverview",
    "ChannelStats",
    "ConsentRow",
    "CustomerCapUsage",
    "CustomerContext",
    "CustomerJourney",
    "CustomerMatch",
    "FatiguedCustomer",
    "FunnelStep",
    "HandoffRow",
    "JourneyStats",
    "LedgerRow",
    "ReasonCount",
    "StoreReader",
    "StoreStatus",
    "TimelineItem",
    "parse_caps",
]

CHANNELS: tuple[str, ...] = ("email", "sms", "whatsapp", "rcs", "push", "in_app")
OUTCOMES: tuple[str, ...] = ("sent", "deferred", "suppressed", "failed")

#: Sparkline buckets kept per series (simulated hours).
SERIES_BUCKETS = 48
#: Handoffs kept in memory for the live feed.
HANDOFF_FEED = 500

StoreState = Literal["missing", "creating", "ready", "error"]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Whether the store can be read, and the run facts from `meta`."""

    path: str
    state: StoreState
    message: str
    mode: str | None = None
    status: str | None = None
    source: str | None = None
    clock: str | None = None
    checkpoint_line: int | None = None
    ledger_rows: int = 0
    customers: int = 0

    @property
    def ready(self) -> bool:
        """True when the schema is there and queries can run."""
        return self.state == "ready"


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One governor decision (a `ledger` row)."""

    id: int
    at: str
    customer: str
    message_id: str
    journey: str
    step: str
    channel: str | None
    category: str
    outcome: str
    reason: str | None
    handoff_from: Mapping[str, str] | None
    deferred_until: str | None
    explanation: str


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """A context handoff: the customer engaged on one channel, the message went to another."""

    id: int
    at: str
    customer: str
    journey: str
    step: str
    from_channel: str
    action: str
    engaged_at: str
    to_channel: str
    outcome: str

    @property
    def pair(self) -> str:
        """`from→to`, the key the handoff feed filters on."""
        return f"{self.from_channel}→{self.to_channel}"


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step of a journey: customers waiting on it and what its sends became."""

    step: str
    waiting: int
    sent: int
    deferred: int
    suppressed: int
    failed: int


@dataclass(frozen=True, slots=True)
class JourneyStats:
    """Counts for one journey (instances from `journey_instances`, sends from the ledger)."""

    name: str
    category: str
    entered: int
    active: int
    converted: int
    exited: int
    steps: tuple[FunnelStep, ...]
    sends_series: tuple[int, ...]
    #: entries per simulated hour over the same buckets as `sends_series`
    entries_series: tuple[int, ...] = ()

    @property
    def conversion_rate(self) -> float:
        """Converted over entered (0 when none entered)."""
        return self.converted / self.entered if self.entered else 0.0

    @property
    def sent(self) -> int:
        """Messages sent by all steps."""
        return sum(s.sent for s in self.steps)


@dataclass(frozen=True, slots=True)
class CapLimit:
    """One cap of the policy: at most `limit` capped sends on `scope` per `window`."""

    scope: str  # "all" or a channel
    window: timedelta
    limit: int
    window_text: str = ""  # as the policy spells it, when it does

    @property
    def label(self) -> str:
        """The reason code spelling, e.g. `cap:all:24h`."""
        return f"cap:{self.scope}:{self.window_label}"

    @property
    def window_label(self) -> str:
        """`24h`, `7d` (the policy's own spelling when known)."""
        return self.window_text or _window_label(self.window)


DEFAULT_CAPS: tuple[CapLimit, ...] = (
    CapLimit("all", timedelta(hours=24), 2),
    CapLimit("all", timedelta(days=7), 5),
    CapLimit("sms", timedelta(hours=24), 1),
    CapLimit("whatsapp", timedelta(hours=24), 1),
)


@dataclass(frozen=True, slots=True)
class CapState:
    """How many customers are at (or over) one cap right now."""

    cap: CapLimit
    customers_at_cap: int
    customers_counted: int


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """Deferred and suppressed decisions for one reason, with a per-hour series."""

    reason: str
    deferred: int
    suppressed: int
    series: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FatiguedCustomer:
    """A customer near or at their caps."""

    customer: str
    sends: int
    window: str
    limit: int
    deferred: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class CapsOverview:
    """The fatigue governor's usage, and the policy in force."""

    clock: str | None
    caps: tuple[CapState, ...]
    reasons: tuple[ReasonCount, ...]
    top_fatigued: tuple[FatiguedCustomer, ...]
    policy: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Decisions per channel and the adapter's health."""

    channel: str
    sent: int
    deferred: int
    suppressed: int
    failed: int
    health: str
    detail: str
    configured: bool | None
    mode: str | None


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    """A profile that matched a lookup."""

    customer: str
    email: str | None
    phone: str | None
    updated_at: str


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """Whether a channel can reach the customer, and why not."""

    channel: str
    address: str | None
    opted_out: bool
    usable: bool
    note: str


@dataclass(frozen=True, slots=True)
class CustomerJourney:
    """One journey instance of the customer."""

    journey: str
    instance: int
    status: str
    entered_at: str
    ended_at: str | None
    next_step: str | None
    next_due: str | None


@dataclass(frozen=True, slots=True)
class CustomerCapUsage:
    """The customer's capped sends in one cap's window, against its limit."""

    cap: CapLimit
    used: int


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of the customer timeline: an event or a message decision."""

    at: str
    kind: Literal["event", "message"]
    title: str
    channel: str | None = None
    outcome: str | None = None
    reason: str | None = None
    why: str = ""
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """Everything the support agent sees about one customer."""

    customer: str
    email: str | None
    phone: str | None
    updated_at: str
    traits: tuple[tuple[str, str], ...]
    state_extra: tuple[tuple[str, str], ...]
    consents: tuple[ConsentRow, ...]
    journeys: tuple[CustomerJourney, ...]
    caps: tuple[CustomerCapUsage, ...]
    timeline: tuple[TimelineItem, ...]
    messages: tuple[LedgerRow, ...]
    events_total: int
    clock: str | None


# --------------------------------------------------------------------------- helpers


def _window_label(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0 and seconds >= 7 * 86400:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_window(value: object) -> timedelta | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
        if text and text[-1] in units and text[:-1].strip().isdigit():
            return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _cap_from_item(item: Mapping[str, Any], scope: str | None = None) -> CapLimit | None:
    raw_scope = scope or item.get("channel") or item.get("scope") or "all"
    window = None
    text = ""
    for key in ("window", "per", "period", "window_seconds"):
        if key in item:
            window = _parse_window(item[key])
            text = item[key].strip() if isinstance(item[key], str) else ""
            break
    if window is None and "window_hours" in item:
        hours = _int(item["window_hours"])
        window = timedelta(hours=hours) if hours is not None else None
    limit = None
    for key in ("limit", "max", "count", "max_sends"):
        if key in item:
            limit = _int(item[key])
            break
    if window is None or limit is None:
        return None
    return CapLimit(str(raw_scope), window, limit, text)


def parse_caps(policy: object) -> tuple[CapLimit, ...]:
    """Read the caps out of `meta.policy` JSON, accepting the common shapes.

    Shapes: `{"caps": [{"channel"|"scope": "all", "window": "24h", "limit": 2}, ...]}`,
    `{"caps": {"all": {"24h": 2, "7d": 5}, "sms": {"24h": 1}}}` or the same with a
    list of `{"window", "limit"}` per scope. Falls back to the SPEC defaults.
    """
    if not isinstance(policy, Mapping):
        return DEFAULT_CAPS
    raw = policy.get("caps", policy.get("frequency_caps"))
    caps: list[CapLimit] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and (cap := _cap_from_item(item)) is not None:
                caps.append(cap)
    elif isinstance(raw, Mapping):
        for scope, spec in raw.items():
            if isinstance(spec, Mapping):
                as_item = _cap_from_item(spec, str(scope))
                if as_item is not None:
                    caps.append(as_item)
                    continue
                for window, limit in spec.items():
                    w, n = _parse_window(window), _int(limit)
                    if w is not None and n is not None:
                        caps.append(CapLimit(str(scope), w, n, str(window).strip()))
            elif isinstance(spec, list):
                for item in spec:
                    if (
                        isinstance(item, Mapping)
                        and (cap := _cap_from_item(item, str(scope))) is not None
                    ):
                        caps.append(cap)
    if not caps:
        return DEFAULT_CAPS
    caps.sort(key=lambda c: (c.scope != "all", c.scope, c.window))
    return tuple(caps)


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _flatten(sub, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, sub in enumerate(value):
            yield from _flatten(sub, f"{prefix}[{i}]")
    else:
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        yield prefix, text


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bucket(at: str) -> str:
    """The simulated hour an ISO time falls in (`2026-01-05T10`)."""
    return at[:13]


def _series(counts: Mapping[str, int], buckets: Sequence[str]) -> tuple[int, ...]:
    return tuple(counts.get(b, 0) for b in buckets)


def _short(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


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
    }
)


def _describe_state(key: str, value: object) -> str:
    if key == "engagement" and isinstance(value, Mapping):
        return f"{value.get('action')} on {value.get('channel')} at {value.get('at')}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return _short(value, 80)


def consents_for(state: Mapping[str, Any]) -> tuple[ConsentRow, ...]:
    """Per channel: the address, the opt-out, and whether it is usable (SPEC §3).

    The rules are the engine's own (`omniconsole.domain.profile`), never a copy.
    """
    try:
        profile = Profile.from_json(dict(state))
    except (KeyError, TypeError, ValueError, AttributeError):
        return ()
    return tuple(
        ConsentRow(c.channel, None if c.address is None else str(c.address), c.opted_out,
                   c.usable, c.why)
        for c in consent_report(profile)
    )  # fmt: skip


# --------------------------------------------------------------------------- reader


@dataclass(slots=True)
class _Aggregates:
    """Counts kept by tailing the ledger; reset when the store is recreated."""

    last_ids: dict[str, int] = field(default_factory=dict)  # tailed up to, per source
    by_channel: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_step: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_customer: Counter[tuple[str, str]] = field(default_factory=Counter)
    reason_hours: dict[str, Counter[str]] = field(default_factory=dict)
    journey_hours: dict[str, Counter[str]] = field(default_factory=dict)
    hours: OrderedDict[str, None] = field(default_factory=OrderedDict)
    handoffs: deque[HandoffRow] = field(default_factory=lambda: deque(maxlen=HANDOFF_FEED))
    handoff_total: int = 0
    handoff_pairs: Counter[str] = field(default_factory=Counter)


class StoreReader:
    """Read-only access to one store file. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path; nothing is opened until the first query."""
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._agg = _Aggregates()
        self._lock = threading.Lock()
        #: the databases whose ledgers are tailed: "main", or each part of a partitioned store
        self._sources: tuple[str, ...] = ("main",)

    # ---------------------------------------------------------------- connection

    def close(self) -> None:
        """Close the connection (it is reopened on the next query)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 200")
            # A partitioned replay's store: its parts are attached and seen as one store.
            parts = attach_parts(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._sources = tuple(f"p{k}" for k in range(parts)) or ("main",)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_dev)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction: every query sees the same checkpoint."""
        with self._lock:
            identity = self._file_identity()
            if identity != self._identity and self._conn is not None:
                self._conn.close()
                self._conn = None
                self._agg = _Aggregates()
            self._identity = identity
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.execute("BEGIN")
            if self._sources == ("main",) and read_part_names(conn):
                # opened before the engine's first checkpoint named its parts: attach them
                conn.execute("COMMIT")
                conn.close()
                self._conn = conn = self._connect()
                self._agg = _Aggregates()
                conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # ---------------------------------------------------------------- status

    def status(self) -> StoreStatus:
        """Whether the store exists and has its schema, and the run facts from `meta`."""
        where = str(self.path)
        if not self.path.exists():
            self.close()
            return StoreStatus(
                where,
                "missing",
                f"Waiting for store: {where} does not exist yet. "
                "Start a replay or the service with --db pointing here.",
            )
        try:
            with self.snapshot() as conn:
                tables = {
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if not {"meta", "ledger", "profiles", "journey_instances"} <= tables:
                    return StoreStatus(
                        where, "creating", f"Waiting for store: {where} is being created…"
                    )
                meta = self._meta(conn)
                ledger_rows = sum(
                    conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {src}.ledger").fetchone()[0]
                    for src in self._sources
                )
                customers = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
        except PartsError as exc:
            self.close()
            return StoreStatus(where, "creating", f"Waiting for store: {exc}")
        except sqlite3.DatabaseError as exc:
            self.close()
            text = str(exc)
            if "locked" in text or "busy" in text:
                return StoreStatus(where, "creating", f"Waiting for store: {where} is busy…")
            if "file is not a database" in text:
                return StoreStatus(where, "error", f"{where} is not an omniconsole store ({text})")
            return StoreStatus(where, "creating", f"Waiting for store: {where} ({text})")
        line = meta.get("checkpoint_line")
        return StoreStatus(
            where,
            "ready",
            "ready",
            mode=meta.get("mode"),
            status=meta.get("status"),
            source=meta.get("source"),
            clock=meta.get("clock"),
            checkpoint_line=int(line) if line and line.isdigit() else None,
            ledger_rows=int(ledger_rows),
            customers=int(customers),
        )

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> dict[str, str]:
        return {
            r["key"]: r["value"]
            for r in conn.execute(
                "SELECT key, value FROM meta WHERE key IN "
                "('schema_version','mode','status','source','config_dir','clock',"
                "'checkpoint_line')"
            )
        }

    def _meta_json(self, conn: sqlite3.Connection, key: str) -> Any:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return _loads(row[0]) if row else None

    def _clock(self, conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
        return str(row[0]) if row else None

    # ---------------------------------------------------------------- ledger tail

    @staticmethod
    def _ledger_row(r: sqlite3.Row) -> LedgerRow:
        handoff = _loads(r["handoff_from"])
        return LedgerRow(
            id=r["id"],
            at=r["at"],
            customer=r["customer"],
            message_id=r["message_id"],
            journey=r["journey"],
            step=r["step"],
            channel=r["channel"],
            category=r["category"],
            outcome=r["outcome"],
            reason=r["reason"],
            handoff_from={str(k): str(v) for k, v in handoff.items()}
            if isinstance(handoff, Mapping)
            else None,
            deferred_until=r["deferred_until"],
            explanation=r["explanation"],
        )

    _LEDGER_COLS = (
        "id, at, customer, message_id, journey, step, channel, category, outcome, "
        "reason, handoff_from, deferred_until, explanation"
    )

    def _refresh_aggregates(self, conn: sqlite3.Connection, batch: int = 50_000) -> _Aggregates:
        """Fold the ledger rows added since the last poll into the counts (per source)."""
        agg = self._agg
        tops = {
            src: conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {src}.ledger").fetchone()[0]
            for src in self._sources
        }
        if any(top < agg.last_ids.get(src, 0) for src, top in tops.items()):
            agg = self._agg = _Aggregates()  # the store was recreated in place
        for src, top in tops.items():
            last = agg.last_ids.get(src, 0)
            while last < top:
                rows = conn.execute(
                    "SELECT id, at, customer, journey, step, channel, outcome, reason,"
                    f" handoff_from FROM {src}.ledger WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
                if not rows:
                    break
                for r in rows:
                    self._add(agg, r)
                last = rows[-1]["id"]
            agg.last_ids[src] = last
        return agg

    @staticmethod
    def _add(agg: _Aggregates, r: sqlite3.Row) -> None:
        outcome, channel, reason = r["outcome"], r["channel"] or "—", r["reason"]
        hour = _bucket(r["at"])
        if hour not in agg.hours:
            agg.hours[hour] = None
            while len(agg.hours) > SERIES_BUCKETS * 4:
                agg.hours.popitem(last=False)
        agg.by_channel[(channel, outcome)] += 1
        agg.by_step[(r["journey"], r["step"], outcome)] += 1
        if outcome == "sent":
            agg.journey_hours.setdefault(r["journey"], Counter())[hour] += 1
        if outcome in ("deferred", "suppressed") and reason:
            agg.by_reason[(reason, outcome)] += 1
            agg.reason_hours.setdefault(reason, Counter())[hour] += 1
            agg.by_customer[(r["customer"], outcome)] += 1
        handoff = _loads(r["handoff_from"]) if r["handoff_from"] else None
        if isinstance(handoff, Mapping) and outcome != "deferred":
            row = HandoffRow(
                id=r["id"],
                at=r["at"],
                customer=r["customer"],
                journey=r["journey"],
                step=r["step"],
                from_channel=str(handoff.get("channel", "?")),
                action=str(handoff.get("action", "?")),
                engaged_at=str(handoff.get("at", "")),
                to_channel=channel,
                outcome=outcome,
            )
            agg.handoffs.append(row)
            agg.handoff_total += 1
            agg.handoff_pairs[row.pair] += 1

    def _hours(self, agg: _Aggregates, clock: str | None) -> list[str]:
        """The last SERIES_BUCKETS simulated hours, ending at the clock (or last ledger hour)."""
        end = _parse_time(clock) if clock else None
        if end is None and agg.hours:
            end = _parse_time(next(reversed(agg.hours)) + ":00:00+00:00")
        if end is None:
            return []
        end = end.replace(minute=0, second=0, microsecond=0)
        return [_fmt_time(end - timedelta(hours=i))[:13] for i in range(SERIES_BUCKETS - 1, -1, -1)]

    # ---------------------------------------------------------------- journeys

    def journeys(self) -> tuple[JourneyStats, ...]:
        """Every journey: entered / active (per step) / converted / exited, sends over time."""
        with self.snapshot() as conn:
            agg = self._refresh_aggregates(conn)
            definitions = self._meta_json(conn, "journeys")
            clock = self._clock(conn)
            counts: dict[str, Counter[str]] = {}
            for r in conn.execute(
                "SELECT journey, status, COUNT(*) AS n FROM journey_instances "
                "GROUP BY journey, status"
            ):
                counts.setdefault(r["journey"], Counter())[r["status"]] = r["n"]
            waiting: dict[str, Counter[str]] = {}
            for r in conn.execute(
                "SELECT journey, next_step, COUNT(*) AS n FROM journey_instances "
                "WHERE status = 'active' AND next_step IS NOT NULL GROUP BY journey, next_step"
            ):
                waiting.setdefault(r["journey"], Counter())[r["next_step"]] = r["n"]
        order: list[tuple[str, str, list[str]]] = []
        if isinstance(definitions, list):
            for d in definitions:
                if not isinstance(d, Mapping):
                    continue
                name = d.get("name", d.get("id"))
                if not isinstance(name, str):
                    continue
                steps: list[str] = []
                listed = d.get("step")  # the journey file's own shape (JourneyDef.to_json)
                for s in listed if isinstance(listed, list) else []:
                    sname = s if isinstance(s, str) else None
                    if isinstance(s, Mapping):
                        candidate = s.get("name", s.get("id", s.get("step")))
                        sname = candidate if isinstance(candidate, str) else None
                    if sname:
                        steps.append(sname)
                order.append((name, str(d.get("category", "")), steps))
        known = {o[0] for o in order}
        seen_steps: dict[str, list[str]] = {}
        for journey, step, _ in agg.by_step:
            seen_steps.setdefault(journey, [])
            if step not in seen_steps[journey]:
                seen_steps[journey].append(step)
        for journey in sorted(set(counts) | set(seen_steps)):
            if journey not in known:
                order.append((journey, "", sorted(seen_steps.get(journey, []))))
        hours = self._hours(agg, clock)
        entries: dict[str, Counter[str]] = {}
        if hours:
            with self.snapshot() as conn:
                for r in conn.execute(
                    "SELECT journey, substr(entered_at, 1, 13) AS h, COUNT(*) AS n"
                    " FROM journey_instances WHERE entered_at >= ? GROUP BY journey, h",
                    (hours[0],),
                ):
                    entries.setdefault(r["journey"], Counter())[r["h"]] = r["n"]
        out: list[JourneyStats] = []
        for name, category, steps in order:
            c = counts.get(name, Counter())
            for extra in seen_steps.get(name, []):
                if extra not in steps:
                    steps.append(extra)
            for extra in waiting.get(name, {}):
                if extra not in steps:
                    steps.append(extra)
            funnel = tuple(
                FunnelStep(
                    step=s,
                    waiting=waiting.get(name, Counter())[s],
                    sent=agg.by_step[(name, s, "sent")],
                    deferred=agg.by_step[(name, s, "deferred")],
                    suppressed=agg.by_step[(name, s, "suppressed")],
                    failed=agg.by_step[(name, s, "failed")],
                )
                for s in steps
            )
            out.append(
                JourneyStats(
                    name=name,
                    category=category,
                    entered=sum(c.values()),
                    active=c["active"],
                    converted=c["converted"],
                    exited=c["completed"] + c["expired"],
                    steps=funnel,
                    sends_series=_series(agg.journey_hours.get(name, Counter()), hours),
                    entries_series=_series(entries.get(name, Counter()), hours),
                )
            )
        return tuple(out)

    # ---------------------------------------------------------------- handoffs

    def handoffs(self, limit: int = 200) -> tuple[tuple[HandoffRow, ...], int, dict[str, int]]:
        """The latest handoffs (newest first), the total, and the count per channel pair."""
        with self.snapshot() as conn:
            agg = self._refresh_aggregates(conn)
        feed = list(agg.handoffs)[-limit:]
        feed.reverse()
        return tuple(feed), agg.handoff_total, dict(agg.handoff_pairs.most_common())

    # ---------------------------------------------------------------- caps

    def caps(self, top: int = 10) -> CapsOverview:
        """Customers at each cap now, deferrals/suppressions by reason, the most fatigued."""
        with self.snapshot() as conn:
            agg = self._refresh_aggregates(conn)
            policy = self._meta_json(conn, "policy")
            clock = self._clock(conn)
            now = _parse_time(clock)
            caps = parse_caps(policy)
            states: list[CapState] = []
            fatigued: list[FatiguedCustomer] = []
            if now is not None:
                for cap in caps:
                    since = _fmt_time(now - cap.window)
                    sql = (
                        "SELECT COUNT(*) AS customers, "
                        "COALESCE(SUM(n >= ?), 0) AS full FROM ("
                        "SELECT customer, COUNT(*) AS n FROM cap_usage WHERE at > ? AND at <= ?"
                    )
                    args: list[object] = [cap.limit, since, _fmt_time(now)]
                    if cap.scope != "all":
                        sql += " AND channel = ?"
                        args.append(cap.scope)
                    sql += " GROUP BY customer)"
                    r = conn.execute(sql, args).fetchone()
                    states.append(CapState(cap, int(r["full"]), int(r["customers"])))
                widest = max(
                    (c for c in caps if c.scope == "all"),
                    key=lambda c: c.window,
                    default=None,
                )
                if widest is not None:
                    for r in conn.execute(
                        "SELECT customer, COUNT(*) AS n FROM cap_usage WHERE at > ? AND at <= ? "
                        "GROUP BY customer ORDER BY n DESC, customer LIMIT ?",
                        (_fmt_time(now - widest.window), _fmt_time(now), top),
                    ):
                        fatigued.append(
                            FatiguedCustomer(
                                customer=r["customer"],
                                sends=int(r["n"]),
                                window=widest.window_label,
                                limit=widest.limit,
                                deferred=agg.by_customer[(r["customer"], "deferred")],
                                suppressed=agg.by_customer[(r["customer"], "suppressed")],
                            )
                        )
            else:
                states = [CapState(cap, 0, 0) for cap in caps]
        hours = self._hours(agg, clock)
        reasons = sorted({reason for reason, _ in agg.by_reason})
        reason_rows = tuple(
            sorted(
                (
                    ReasonCount(
                        reason=reason,
                        deferred=agg.by_reason[(reason, "deferred")],
                        suppressed=agg.by_reason[(reason, "suppressed")],
                        series=_series(agg.reason_hours.get(reason, Counter()), hours),
                    )
                    for reason in reasons
                ),
                key=lambda rc: (-(rc.deferred + rc.suppressed), rc.reason),
            )
        )
        if isinstance(policy, Mapping):
            policy_lines = tuple(_flatten(policy))
        else:
            policy_lines = (
                *((f"caps.{c.scope}.{c.window_label}", str(c.limit)) for c in caps),
                ("note", "policy not in store yet; SPEC defaults shown"),
            )
        return CapsOverview(clock, tuple(states), reason_rows, tuple(fatigued), policy_lines)

    # ---------------------------------------------------------------- channels

    def channels(self) -> tuple[ChannelStats, ...]:
        """Per channel: sent / deferred / suppressed / failed, and adapter health."""
        with self.snapshot() as conn:
            agg = self._refresh_aggregates(conn)
            health = {
                r["channel"]: (r["state"], r["detail"])
                for r in conn.execute("SELECT channel, state, detail FROM adapter_health")
            }
            configured = self._meta_json(conn, "channels")
        configured = configured if isinstance(configured, Mapping) else {}
        names = list(CHANNELS)
        for ch, _ in agg.by_channel:
            if ch not in names:
                names.append(ch)
        out: list[ChannelStats] = []
        for ch in names:
            conf = configured.get(ch)
            conf = conf if isinstance(conf, Mapping) else {}
            state, detail = health.get(ch, ("", ""))
            mode = conf.get("mode")
            is_conf = conf.get("configured")
            if not state:
                if conf:
                    state = (
                        "not_configured"
                        if is_conf is False
                        else "dry_run"
                        if mode == "dry-run"
                        else "up"
                    )
                    detail = str(conf.get("detail", ""))
                else:
                    state, detail = "unknown", "no health reported yet"
            counts = [agg.by_channel[(ch, o)] for o in OUTCOMES]
            if ch == "—" and not any(counts):
                continue
            out.append(
                ChannelStats(
                    ch,
                    sent=counts[0],
                    deferred=counts[1],
                    suppressed=counts[2],
                    failed=counts[3],
                    health=state,
                    detail=detail,
                    configured=is_conf if isinstance(is_conf, bool) else None,
                    mode=mode if isinstance(mode, str) else None,
                )
            )
        return tuple(out)

    # ---------------------------------------------------------------- customers

    def find_customers(self, query: str, limit: int = 20) -> tuple[CustomerMatch, ...]:
        """Profiles whose id, email or phone is `query`; else ids starting with it."""
        query = query.strip()
        if not query:
            return ()
        cols = "customer, email, phone, updated_at"
        with self.snapshot() as conn:
            rows = conn.execute(
                f"SELECT {cols} FROM profiles WHERE customer = ? "
                f"UNION SELECT {cols} FROM profiles WHERE email = ? COLLATE NOCASE "
                f"UNION SELECT {cols} FROM profiles WHERE email = ? "
                f"UNION SELECT {cols} FROM profiles WHERE phone = ? LIMIT ?",
                (query, query, query.lower(), query, limit),
            ).fetchall()
            if not rows:
                rows = conn.execute(
                    f"SELECT {cols} FROM profiles WHERE customer >= ? AND customer < ? "
                    "ORDER BY customer LIMIT ?",
                    (query, query + "\U0010ffff", limit),
                ).fetchall()
        return tuple(
            CustomerMatch(r["customer"], r["email"], r["phone"], r["updated_at"]) for r in rows
        )

    def customer(
        self, customer: str, events: int = 60, messages: int = 60
    ) -> CustomerContext | None:
        """The customer's context, or None when there is no such profile."""
        with self.snapshot() as conn:
            prof = conn.execute(
                "SELECT customer, email, phone, updated_at, state FROM profiles WHERE customer = ?",
                (customer,),
            ).fetchone()
            if prof is None:
                return None
            clock = self._clock(conn)
            policy = self._meta_json(conn, "policy")
            ev_rows = conn.execute(
                "SELECT id, at, applied_at, type, name, late, payload FROM events "
                "WHERE customer = ? ORDER BY id DESC LIMIT ?",
                (customer, events),
            ).fetchall()
            events_total = conn.execute(
                "SELECT COUNT(*) FROM events WHERE customer = ?", (customer,)
            ).fetchone()[0]
            led_rows = conn.execute(
                f"SELECT {self._LEDGER_COLS} FROM ledger WHERE customer = ? "
                "ORDER BY at DESC, seq DESC LIMIT ?",
                (customer, messages),
            ).fetchall()
            inst_rows = conn.execute(
                "SELECT journey, instance, status, entered_at, ended_at, next_step, next_due "
                "FROM journey_instances WHERE customer = ? "
                "ORDER BY (status = 'active') DESC, entered_at DESC LIMIT 50",
                (customer,),
            ).fetchall()
            caps = parse_caps(policy)
            now = _parse_time(clock)
            usage: list[CustomerCapUsage] = []
            for cap in caps:
                used = 0
                if now is not None:
                    sql = "SELECT COUNT(*) FROM cap_usage WHERE customer = ? AND at > ? AND at <= ?"
                    args: list[object] = [customer, _fmt_time(now - cap.window), _fmt_time(now)]
                    if cap.scope != "all":
                        sql += " AND channel = ?"
                        args.append(cap.scope)
                    used = int(conn.execute(sql, args).fetchone()[0])
                usage.append(CustomerCapUsage(cap, used))
        state = _loads(prof["state"])
        state = state if isinstance(state, Mapping) else {}
        traits_raw = state.get("traits")
        traits: Mapping[str, Any] = traits_raw if isinstance(traits_raw, Mapping) else {}
        extra = tuple(
            (str(k), _describe_state(str(k), v))
            for k, v in state.items()
            if k not in _STATE_HIDDEN and v not in (None, [], {}, "")
        )
        ledger = tuple(self._ledger_row(r) for r in led_rows)
        timeline = self._timeline(ev_rows, ledger)
        return CustomerContext(
            customer=prof["customer"],
            email=prof["email"],
            phone=prof["phone"],
            updated_at=prof["updated_at"],
            traits=tuple((str(k), _short(v, 80)) for k, v in sorted(traits.items())),
            state_extra=extra,
            consents=consents_for(state),
            journeys=tuple(
                CustomerJourney(
                    r["journey"],
                    r["instance"],
                    r["status"],
                    r["entered_at"],
                    r["ended_at"],
                    r["next_step"],
                    r["next_due"],
                )
                for r in inst_rows
            ),
            caps=tuple(usage),
            timeline=timeline,
            messages=ledger,
            events_total=int(events_total),
            clock=clock,
        )

    @staticmethod
    def _timeline(
        ev_rows: Iterable[sqlite3.Row], ledger: Sequence[LedgerRow]
    ) -> tuple[TimelineItem, ...]:
        items: list[tuple[str, int, int, TimelineItem]] = []
        for r in ev_rows:
            payload = _loads(r["payload"])
            payload = payload if isinstance(payload, Mapping) else {}
            if r["type"] == "identify":
                traits = payload.get("traits")
                keys = ", ".join(sorted(traits)) if isinstance(traits, Mapping) else ""
                title = f"identify {keys}".strip()
            else:
                props = payload.get("properties")
                detail = (
                    " ".join(f"{k}={_short(v, 24)}" for k, v in props.items())
                    if isinstance(props, Mapping)
                    else ""
                )
                title = f"{r['name']} {detail}".strip()
            why = f"late: happened {r['at']}, applied at the clock" if r["late"] else ""
            items.append(
                (
                    r["applied_at"],
                    0,
                    r["id"],
                    TimelineItem(r["applied_at"], "event", title, why=why),
                )
            )
        for m in ledger:
            why = m.explanation
            if m.handoff_from:
                h = m.handoff_from
                why = (
                    f"{why} (handoff: continues from {h.get('channel')} "
                    f"{h.get('action')} at {h.get('at')})"
                )
            items.append(
                (
                    m.at,
                    1,
                    m.id,
                    TimelineItem(
                        m.at,
                        "message",
                        f"{m.journey}.{m.step}",
                        channel=m.channel,
                        outcome=m.outcome,
                        reason=m.reason,
                        why=why,
                        message_id=m.message_id,
                    ),
                )
            )
        # newest first; at the same instant the decision follows the event that caused it
        items.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
        return tuple(t[3] for t in items)
