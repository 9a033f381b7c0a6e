"""One customer's profile: traits, consents, engagement, journeys and pending timers.

This is the state a virtual profile actor holds while active and the store holds while
it is passivated (`to_json` / `from_json`). Only what decisions need lives here; the
timeline itself is in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import Handoff, Recipient
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
START_WORDS = frozenset({"start", "unstop", "yes"})
ENGAGEMENT_ACTIONS = {"Message Opened": "opened", "Message Clicked": "clicked"}
# Channels that `Unsubscribed` with `all` opts out of: every channel but in_app.
OPT_OUT_ALL = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.RCS, Channel.PUSH)
# Unsubscribes that do not block transactional messages.
SOFT_OPT_OUTS = frozenset({Channel.EMAIL, Channel.PUSH})
RECENT_SENT_KEPT = 32

_ZONES: dict[str, ZoneInfo] = {}


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or UTC when unknown (cached)."""
    found = _ZONES.get(name)
    if found is None:
        try:
            found = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            found = ZoneInfo("UTC")
        _ZONES[name] = found
    return found


@dataclass(slots=True)
class Instance:
    """A customer's run through one journey."""

    journey: str
    number: int
    entered_at: datetime
    seen: set[str] = field(default_factory=set)  # watched events seen since entry
    finished_steps: set[str] = field(default_factory=set)  # finally decided or skipped
    properties: dict[str, Any] = field(default_factory=dict)  # of the entry event

    def to_json(self) -> list[Any]:
        return [
            self.journey,
            self.number,
            format_timestamp(self.entered_at),
            sorted(self.seen),
            sorted(self.finished_steps),
            self.properties,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Instance:
        return cls(raw[0], raw[1], parse_timestamp(raw[2]), set(raw[3]), set(raw[4]), raw[5])


@dataclass(slots=True)
class Timer:
    """Something to do at `due`: a step coming due, or a deferred send to decide again.

    `first_due` is when the step first came due (the 48 h deferral limit counts from it);
    `channels` is the list the send chooses from (a fallback re-send uses a shorter one).
    """

    due: datetime
    seq: int
    kind: str  # "step", "redecide" or "expire"
    journey: str
    instance: int
    step: str
    message_id: str = ""
    first_due: datetime | None = None
    channels: tuple[str, ...] = ()
    resend: bool = False

    def sort_key(self) -> tuple[datetime, int]:
        return (self.due, self.seq)

    def to_json(self) -> list[Any]:
        return [
            format_timestamp(self.due),
            self.seq,
            self.kind,
            self.journey,
            self.instance,
            self.step,
            self.message_id,
            None if self.first_due is None else format_timestamp(self.first_due),
            list(self.channels),
            self.resend,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Timer:
        return cls(
            parse_timestamp(raw[0]),
            raw[1],
            raw[2],
            raw[3],
            raw[4],
            raw[5],
            raw[6],
            None if raw[7] is None else parse_timestamp(raw[7]),
            tuple(raw[8]),
            raw[9],
        )


@dataclass(slots=True)
class SentMessage:
    """A message that went out, remembered so a `Message Failed` can find its step."""

    message_id: str
    journey: str
    instance: int
    step: str
    channel: str
    at: datetime
    resend: bool
    fallback_done: bool = False

    def to_json(self) -> list[Any]:
        return [
            self.message_id,
            self.journey,
            self.instance,
            self.step,
            self.channel,
            format_timestamp(self.at),
            self.resend,
            self.fallback_done,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> SentMessage:
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4], parse_timestamp(raw[5]), raw[6], raw[7])


@dataclass(slots=True)
class Profile:
    """Everything the engine knows about one customer that decisions depend on."""

    customer: str
    traits: dict[str, Any] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    engagement: Handoff | None = None  # most recent open / click / inbound reply
    event_times: dict[str, datetime] = field(default_factory=dict)  # last time of some events
    entered_once: set[str] = field(default_factory=set)  # 'once' journeys ever entered
    instance_counter: dict[str, int] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)  # live ones
    timers: list[Timer] = field(default_factory=list)  # sorted by (due, seq)
    sent: list[SentMessage] = field(default_factory=list)  # most recent last
    decision_seq: int = 0
    timer_seq: int = 0

    # ---- reachability and consent (SPEC §3) ----

    def has(self, trait: str) -> bool:
        value = self.traits.get(trait)
        return isinstance(value, str) and bool(value.strip())

    def usable(self, channel: Channel, category: Category) -> bool:
        """Whether `channel` may carry a message of `category` to this customer."""
        out = self.opted_out
        transactional = category is Category.TRANSACTIONAL
        if channel is Channel.EMAIL:
            return self.has("email") and ("email" not in out or transactional)
        if channel is Channel.SMS:
            return self.has("phone") and "sms" not in out
        if channel is Channel.WHATSAPP:
            return (
                self.has("phone")
                and self.traits.get("whatsapp_opt_in") is True
                and "whatsapp" not in out
            )
        if channel is Channel.RCS:
            return (
                self.has("phone")
                and self.traits.get("rcs_capable") is True
                and "sms" not in out
                and "rcs" not in out
            )
        if channel is Channel.PUSH:
            return self.has("push_token") and ("push" not in out or transactional)
        return True  # in_app

    def usable_channels(
        self, channels: tuple[Channel, ...], category: Category
    ) -> frozenset[Channel]:
        """The subset of `channels` usable for `category`."""
        usable = self.usable
        return frozenset([c for c in channels if usable(c, category)])

    @property
    def timezone(self) -> str:
        tz = self.traits.get("timezone")
        return tz if isinstance(tz, str) and tz else "UTC"

    @property
    def preferred_channel(self) -> str | None:
        pref = self.traits.get("preferred_channel")
        return pref if isinstance(pref, str) else None

    def opt_out(self, channel: str) -> None:
        if channel == "all":
            self.opted_out.update(c.value for c in OPT_OUT_ALL)
        elif channel != Channel.IN_APP.value:
            self.opted_out.add(channel)

    def opt_in(self, channel: str) -> None:
        if channel == "all":
            self.opted_out.clear()
        else:
            self.opted_out.discard(channel)

    def recipient(self) -> Recipient:
        """Addresses and traits for adapters and templates."""

        def text(key: str) -> str | None:
            value = self.traits.get(key)
            return value if isinstance(value, str) and value else None

        return Recipient(
            customer=self.customer,
            email=text("email"),
            phone=text("phone"),
            push_token=text("push_token"),
            first_name=text("first_name"),
            locale=text("locale"),
            timezone=self.timezone,
            traits=dict(self.traits),
        )

    # ---- timers ----

    def add_timer(self, timer: Timer) -> None:
        """Insert keeping (due, seq) order; seq gives 'in the order they were set'."""
        timers = self.timers
        key = timer.sort_key()
        index = len(timers)
        while index > 0 and timers[index - 1].sort_key() > key:
            index -= 1
        timers.insert(index, timer)

    def next_timer_seq(self) -> int:
        self.timer_seq += 1
        return self.timer_seq

    def next_decision_seq(self) -> int:
        self.decision_seq += 1
        return self.decision_seq

    def remember_sent(self, message: SentMessage) -> None:
        self.sent.append(message)
        if len(self.sent) > RECENT_SENT_KEPT:
            del self.sent[: len(self.sent) - RECENT_SENT_KEPT]

    def live_instance(self, journey: str, number: int) -> Instance | None:
        for inst in self.instances:
            if inst.journey == journey and inst.number == number:
                return inst
        return None

    # ---- persistence ----

    def to_json(self) -> dict[str, Any]:
        eng = self.engagement
        return {
            "customer": self.customer,
            "traits": self.traits,
            "opted_out": sorted(self.opted_out),
            "engagement": None if eng is None else [eng.channel, eng.action, eng.at],
            "event_times": {k: format_timestamp(v) for k, v in self.event_times.items()},
            "entered_once": sorted(self.entered_once),
            "instance_counter": self.instance_counter,
            "instances": [i.to_json() for i in self.instances],
            "timers": [t.to_json() for t in self.timers],
            "sent": [s.to_json() for s in self.sent],
            "decision_seq": self.decision_seq,
            "timer_seq": self.timer_seq,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Profile:
        eng = raw.get("engagement")
        return cls(
            customer=raw["customer"],
            traits=raw["traits"],
            opted_out=set(raw["opted_out"]),
            engagement=None if eng is None else Handoff(eng[0], eng[1], eng[2]),
            event_times={k: parse_timestamp(v) for k, v in raw["event_times"].items()},
            entered_once=set(raw["entered_once"]),
            instance_counter=dict(raw["instance_counter"]),
            instances=[Instance.from_json(i) for i in raw["instances"]],
            timers=[Timer.from_json(t) for t in raw["timers"]],
            sent=[SentMessage.from_json(s) for s in raw["sent"]],
            decision_seq=raw["decision_seq"],
            timer_seq=raw["timer_seq"],
        )
