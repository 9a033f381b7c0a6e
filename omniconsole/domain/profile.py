"""One customer's profile: traits, consents, engagement, journeys and pending timers.

This is the state a virtual profile actor holds while active and the store holds while
it is passivated (`to_json` / `from_json`). Only what decisions need lives here; the
timeline itself is in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import orjson

from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import Handoff, Recipient

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
START_WORDS = frozenset({"start", "unstop", "yes"})
ENGAGEMENT_ACTIONS = {"Message Opened": "opened", "Message Clicked": "clicked"}
# Channels that `Unsubscribed` with `all` opts out of: every channel but in_app. RCS is
# not listed: its consent is the sms opt-out (SPEC §3), so `Subscribed sms` restores it.
OPT_OUT_ALL = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.PUSH)
# Unsubscribes that do not block transactional messages.
SOFT_OPT_OUTS = frozenset({Channel.EMAIL, Channel.PUSH})

# Enum members read from module constants: `Channel.EMAIL` is a class attribute lookup
# through the enum metaclass (~80 ns), and `usable` runs per channel of every send.
_EMAIL, _SMS, _WHATSAPP, _RCS, _PUSH = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.WHATSAPP,
    Channel.RCS,
    Channel.PUSH,
)
_TRANSACTIONAL = Category.TRANSACTIONAL

_ZONES: dict[str, ZoneInfo] = {}
_UTC_ZONE = ZoneInfo("UTC")
#: IANA names are short ("America/Argentina/ComodRivadavia" is 32); anything longer is
#: not one, and is not even handed to the file system
MAX_ZONE_CHARS = 64
#: distinct names remembered; a trait is customer input, so the cache must not grow
#: with whatever customers send
_ZONES_KEPT = 1024


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is not one.

    Never raises: a time zone is a customer's trait, and `ZoneInfo` reads the name as a
    path — "America" is a directory (IsADirectoryError), 300 characters is a name too
    long for the file system (OSError), "../x" is refused (ValueError) — so every
    failure means "not a zone" here.
    """
    found = _ZONES.get(name)
    if found is None:
        found = _UTC_ZONE
        if isinstance(name, str) and 0 < len(name) <= MAX_ZONE_CHARS and "\x00" not in name:
            try:
                found = ZoneInfo(name)
            except Exception:  # ZoneInfoNotFoundError, ValueError, OSError, a bad data file
                found = _UTC_ZONE
        if len(_ZONES) >= _ZONES_KEPT:
            _ZONES.clear()
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
    # control group or variant, drawn once at entry (None: no experiment marks it)
    arm: str | None = None


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
    #: affinity and best-hour history, topic choices, open digests; None while unused
    channel_state: ChannelState | None = None

    # ---- reachability and consent (SPEC §3) ----

    def has(self, trait: str) -> bool:
        value = self.traits.get(trait)
        return value.__class__ is str and bool(value) and not value.isspace()

    def usable(self, channel: Channel, category: Category) -> bool:
        """Whether `channel` may carry a message of `category` to this customer."""
        out = self.opted_out
        if channel is _EMAIL:
            return self.has("email") and ("email" not in out or category is _TRANSACTIONAL)
        if channel is _SMS:
            return self.has("phone") and "sms" not in out
        if channel is _WHATSAPP:
            return (
                self.has("phone")
                and self.traits.get("whatsapp_opt_in") is True
                and "whatsapp" not in out
            )
        if channel is _RCS:
            return (
                self.has("phone")
                and self.traits.get("rcs_capable") is True
                and "sms" not in out
                and "rcs" not in out
            )
        if channel is _PUSH:
            return self.has("push_token") and ("push" not in out or category is _TRANSACTIONAL)
        return True  # in_app

    def usable_channels(
        self, channels: tuple[Channel, ...], category: Category
    ) -> tuple[Channel, ...]:
        """The channels of `channels` usable for `category`, in their order.

        A tuple, not a set: it holds a few channels, `in` finds one by identity, and a
        set of enum members hashes each through `Enum.__hash__`, a Python call."""
        usable = self.usable
        return tuple([c for c in channels if usable(c, category)])

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
        """Keep a send for a later `Message Failed` (the flow forgets those that can
        no longer fall back: `CustomerFlow.forget_sent`)."""
        self.sent.append(message)

    def live_instance(self, journey: str, number: int) -> Instance | None:
        for inst in self.instances:
            if inst.journey == journey and inst.number == number:
                return inst
        return None

    # ---- persistence ----

    def dumps(self) -> bytes:
        """The profile as JSON for the store (orjson writes dataclasses and times in C)."""
        return orjson.dumps(self, default=_sorted_set)

    @classmethod
    def loads(cls, data: bytes | str) -> Profile:
        """The profile `dumps` wrote (or `from_json` reads): msgspec decodes the JSON
        straight into the dataclasses, times included, in a third of the time of
        `orjson.loads` + `from_json` (it runs for every profile brought back into memory).
        Raises `ProfileDecodeError` when `data` is not such a profile."""
        try:
            return _DECODER.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError is one
            raise ProfileDecodeError(str(exc)) from exc

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Profile:
        """From the decoded JSON of `dumps`."""
        eng = raw.get("engagement")
        return cls(
            customer=raw["customer"],
            traits=raw["traits"],
            opted_out=set(raw["opted_out"]),
            engagement=None if eng is None else Handoff(eng["channel"], eng["action"], eng["at"]),
            event_times={k: _time(v) for k, v in raw["event_times"].items()},
            entered_once=set(raw["entered_once"]),
            instance_counter=dict(raw["instance_counter"]),
            instances=[
                Instance(i["journey"], i["number"], _time(i["entered_at"]), set(i["seen"]),
                         set(i["finished_steps"]), i["properties"], i.get("arm"))
                for i in raw["instances"]
            ],
            timers=[
                Timer(_time(t["due"]), t["seq"], t["kind"], t["journey"], t["instance"],
                      t["step"], t["message_id"],
                      None if t["first_due"] is None else _time(t["first_due"]),
                      tuple(t["channels"]), t["resend"])
                for t in raw["timers"]
            ],
            sent=[
                SentMessage(m["message_id"], m["journey"], m["instance"], m["step"],
                            m["channel"], _time(m["at"]), m["resend"], m["fallback_done"])
                for m in raw["sent"]
            ],
            decision_seq=raw["decision_seq"],
            timer_seq=raw["timer_seq"],
            channel_state=ChannelState.from_json(raw.get("channel_state")),
        )  # fmt: skip


class ProfileDecodeError(ValueError):
    """Stored bytes that are not a profile (bad JSON, a missing field, a wrong type)."""


#: the stored JSON's shape is the dataclasses' own: a field with a default may be absent
#: (profiles stored before `engagement`, `arm` or `channel_state` existed) and gets it;
#: one without (the customer, a timer's due, ...) may not, nor may a value of a wrong type
_DECODER = msgspec.json.Decoder(Profile)


@dataclass(frozen=True, slots=True)
class ConsentLine:
    """One channel as a support agent sees it: usable for marketing, and why (not)."""

    channel: str
    address: str | None
    opted_out: bool
    usable: bool
    why: str


def consent_report(profile: Profile) -> list[ConsentLine]:
    """Per channel, whether lifecycle/promotional messages may use it, in words (SPEC §3)."""
    traits, out = profile.traits, profile.opted_out
    phone = traits.get("phone") if profile.has("phone") else None
    lines: list[ConsentLine] = []
    for channel in Channel:
        usable = profile.usable(channel, Category.LIFECYCLE)
        address: Any = None
        why = "ok"
        if channel is Channel.EMAIL:
            address = traits.get("email") if profile.has("email") else None
            why = "no email address" if address is None else why
        elif channel in (Channel.SMS, Channel.WHATSAPP, Channel.RCS):
            address = phone
            if phone is None:
                why = "no phone number"
            elif channel is Channel.WHATSAPP and traits.get("whatsapp_opt_in") is not True:
                why = "not opted in to WhatsApp"
            elif channel is Channel.RCS and traits.get("rcs_capable") is not True:
                why = "device not RCS capable"
        elif channel is Channel.PUSH:
            address = traits.get("push_token") if profile.has("push_token") else None
            why = "no push token" if address is None else why
        else:
            address, why = "inbox", "always"
        blocked = [c for c in (channel.value, "sms" if channel is Channel.RCS else "") if c in out]
        if blocked and address is not None:
            why = f"opted out of {blocked[0]}"
            if channel in SOFT_OPT_OUTS:
                why += " (transactional still allowed)"
        lines.append(ConsentLine(channel.value, address, bool(blocked), usable, why))
    return lines


def _sorted_set(value: object) -> list[Any]:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
