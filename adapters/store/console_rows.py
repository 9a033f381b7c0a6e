"""What the console's data layer hands the screens: typed, frozen, and free of words.

`console_queries` reads these from the store (SQL over one committed cut),
`console_aggregates` adds the running counts, `console.ConsoleReader` puts a view's
records together, and the console's presentation (`omniconsole.tui.present`) words
them. Times are ISO 8601 UTC text as the store keeps them; counts are plain ints;
policy and journeys are the domain's own config types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from omniconsole.domain.channel_summary import ChannelSummary
from omniconsole.domain.config import CapRule, JourneyDef, Policy
from omniconsole.domain.messages import Handoff
from omniconsole.domain.profile import Profile

__all__ = [
    "CHANNELS",
    "OUTCOMES",
    "CapState",
    "CapsOverview",
    "ChannelStats",
    "CustomerCapUsage",
    "CustomerMatch",
    "CustomerRecord",
    "DecisionFilter",
    "DecisionPage",
    "DecisionRow",
    "EventRow",
    "FatiguedCustomer",
    "FunnelStep",
    "InboxRow",
    "InstanceRow",
    "JourneyStats",
    "OutboxRow",
    "OutcomesOverview",
    "ReasonCount",
    "StoreState",
    "StoreStatus",
]

CHANNELS: tuple[str, ...] = ("email", "sms", "whatsapp", "rcs", "push", "in_app")
OUTCOMES: tuple[str, ...] = ("sent", "deferred", "suppressed", "failed")

StoreState = Literal["missing", "creating", "ready", "error"]


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Whether the store can be read, and the run facts of the committed cut.

    `detail` is the technical cause when it cannot be read (an SQLite message, a
    missing part); the console words the state itself.
    """

    path: str
    state: StoreState
    detail: str = ""
    mode: str | None = None
    status: str | None = None
    source: str | None = None
    clock: str | None = None
    checkpoint_line: int | None = None
    decisions: int = 0
    customers: int = 0

    @property
    def ready(self) -> bool:
        """True when the schema is there and queries can run."""
        return self.state == "ready"


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One governor decision (a ledger line) with its place in the total order."""

    at: str
    ts: int
    customer: str
    seq: int
    message_id: str
    journey: str
    step: str
    channel: str | None
    category: str
    outcome: str
    reason: str | None
    handoff: Handoff | None
    deferred_until: str | None
    explanation: str

    @property
    def key(self) -> tuple[int, str, int]:
        """(ts, customer, seq): unique over every part, the ledger's total order."""
        return (self.ts, self.customer, self.seq)


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step of a journey: customers waiting on it and what its sends became."""

    step: str
    waiting: int
    #: customers (journey instances) whose message for this step was finally sent,
    #: suppressed or failed: each instance's message counts once
    sent: int
    #: deferral decisions (one message may be deferred more than once)
    deferred: int
    suppressed: int
    failed: int
    #: fallback re-sends of this step that went out (SPEC §5), apart from `sent`
    fallback_sent: int = 0


@dataclass(frozen=True, slots=True)
class JourneyStats:
    """Counts for one journey: instances from the store, decisions from the counts."""

    name: str
    definition: JourneyDef | None
    entered: int
    active: int
    converted: int
    exited: int
    steps: tuple[FunnelStep, ...]
    #: messages sent by every step, fallback re-sends included
    messages_sent: int
    sends_series: tuple[int, ...]
    #: entries per simulated hour over the same hours as `sends_series`
    entries_series: tuple[int, ...] = ()

    @property
    def category(self) -> str:
        """The journey's category ('' when it is not in the stored config)."""
        return "" if self.definition is None else str(self.definition.category)

    @property
    def has_goal(self) -> bool:
        """Whether the journey has a goal event, and so a conversion rate."""
        return self.definition is not None and self.definition.goal_event is not None

    @property
    def conversion_rate(self) -> float | None:
        """Converted over entered; None when the journey has no goal (no rate at all)."""
        if not self.has_goal:
            return None
        return self.converted / self.entered if self.entered else 0.0


@dataclass(frozen=True, slots=True)
class CapState:
    """How many customers are at (or over) one cap right now."""

    cap: CapRule
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
    """A customer near or at their widest all-channel cap."""

    customer: str
    sends: int
    cap: CapRule
    deferred: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class CapsOverview:
    """The fatigue governor's usage, and the policy in force (None: not stored yet)."""

    clock: str | None
    caps: tuple[CapState, ...]
    reasons: tuple[ReasonCount, ...]
    top_fatigued: tuple[FatiguedCustomer, ...]
    policy: Policy | None


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Decisions per channel (None: decisions that found no usable channel) and the
    adapter's health as the engine reported it."""

    channel: str | None
    sent: int
    deferred: int
    suppressed: int
    failed: int
    health: str | None  # up, degraded, circuit_open, dry_run, not_configured; None: unknown
    detail: str
    configured: bool | None
    mode: str | None


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    """A profile that matched a lookup."""

    customer: str
    email: str | None
    phone: str | None
    name: str | None
    updated_at: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """One applied event of a customer."""

    id: int
    at: str  # the event's own time
    applied_at: str  # the clock when applied
    type: str
    name: str | None
    late: bool
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One journey instance of a customer, with its next pending step."""

    journey: str
    instance: int
    status: str
    entered_at: str
    ended_at: str | None
    next_step: str | None
    next_due: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A live send as the outbox keeps it: rendered, and where it stands."""

    message_id: str
    channel: str
    status: str  # pending, sent, failed
    subject: str
    text: str
    detail: str


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A message in the customer's in-app inbox."""

    message_id: str
    at: str
    subject: str
    body: str
    read: bool


@dataclass(frozen=True, slots=True)
class CustomerCapUsage:
    """The customer's capped sends in one cap's window, against its limit."""

    cap: CapRule
    used: int


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """Everything the store holds about one customer, as of the committed cut."""

    customer: str
    email: str | None
    phone: str | None
    updated_at: str
    profile: Profile | None  # None when the stored state does not parse
    state: Mapping[str, Any]
    events: tuple[EventRow, ...]  # newest first
    events_total: int
    decisions: tuple[DecisionRow, ...]  # newest first
    decisions_total: int
    instances: tuple[InstanceRow, ...]
    caps: tuple[CustomerCapUsage, ...]
    clock: str | None
    journeys: Mapping[str, JourneyDef] = field(default_factory=dict)
    config_dir: str | None = None
    #: live sends of this customer by message id (rendered as they went out)
    outbox: Mapping[str, OutboxRow] = field(default_factory=dict)
    #: in-app messages by message id
    inbox: Mapping[str, InboxRow] = field(default_factory=dict)
    #: topics, affinity scores and best hour; None when the run has no channel rules
    channels: ChannelSummary | None = None


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Which decisions to list. Unset fields match everything; `channel=""` matches
    decisions that found no channel; `since`/`until` are ISO times (until excluded)."""

    outcome: str | None = None
    reason: str | None = None
    channel: str | None = None
    journey: str | None = None
    step: str | None = None
    customer: str | None = None
    since: str | None = None
    until: str | None = None
    #: only sent handoffs (from any channel, or from this one)
    handoffs: bool = False
    handoff_from: str | None = None

    @property
    def empty(self) -> bool:
        """True when it lets every decision through."""
        return self == DecisionFilter()


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """One page of decisions under a filter, newest first.

    `total` is how many decisions match in the whole store when the engine's counts
    can say (None: the filter needs a time range or a customer the counts do not keep).
    `after` is the key the page started after (None: the newest); `more` whether older
    decisions follow.
    """

    filter: DecisionFilter
    rows: tuple[DecisionRow, ...]
    total: int | None
    after: tuple[int, str, int] | None
    more: bool


@dataclass(frozen=True, slots=True)
class OutcomesOverview:
    """Control groups against treatment, per journey and variant (the Outcomes view).

    `report` is the replay report's `outcomes` section for this cut (None: the run's
    config has no control group or variant). `days` are the simulated days of the run
    so far; `conversions` gives, per journey and group (`treatment`, `control`), the
    cumulative (entered, converted) at the end of each of those days.
    """

    report: Mapping[str, Any] | None
    days: tuple[str, ...] = ()
    conversions: Mapping[str, Mapping[str, tuple[tuple[int, int], ...]]] = field(
        default_factory=dict
    )
