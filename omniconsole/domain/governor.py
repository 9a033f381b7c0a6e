"""The fatigue governor's decision for one send request (SPEC §4), as a pure function.

The governor actor owns each customer's cap usage and calls `decide`; nothing here
knows about actors or channels' SDKs.

(Over 400 lines: SPEC §4 as one function per step, which `decide` and the channel
rules' planned path (`domain.selection`) both call, beside the packed cap usage those
steps count.)
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from omniconsole.domain.assignment import Arm
from omniconsole.domain.channel_plan import ChannelPlan
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import CapRule, Policy
from omniconsole.domain.messages import Handoff, Recipient
from omniconsole.domain.profile import zone
from omniconsole.domain.timeutil import format_duration, format_timestamp, from_micros, to_micros

SEND = "send"
DEFERRED = "deferred"
SUPPRESSED = "suppressed"
#: decided like a send, but the customer is in a control group: nothing goes out
HELD_OUT = "held_out"


@dataclass(slots=True)
class SendRequest:
    """A profile asks the governor whether, where and when a step's message may go out.

    Everything the decision needs about the customer travels with the request
    (`usable` is consent and reachability, decided by the profile); cap usage is the
    governor's own. `exited` marks a deferred send whose journey condition no longer
    holds: the governor only records its final line. `arm` is the customer's control
    group or variant in this journey (None when the journey has no experiment).

    Treat it as immutable once sent. It is not `frozen`: a frozen dataclass sets each of
    these 20 fields through `object.__setattr__`, ~5x slower to build, and one is built
    per decision; it was never hashable anyway (`event_times` is a dict).
    """

    customer: str
    seq: int
    message_id: str
    journey: str
    instance: int
    step: str
    category: Category
    channels: tuple[Channel, ...]
    usable: Collection[Channel]  # of `channels`
    preferred: str | None
    timezone: str
    now: datetime
    first_due: datetime
    event_times: Mapping[str, datetime]  # the profile's own: read it before deciding only
    engagement: Handoff | None
    resend: bool = False
    exited: bool = False
    recipient: Recipient | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    #: channel rules of the step (`domain.channel_plan`); None decides as SPEC §4 says
    plan: ChannelPlan | None = None
    #: the holdout/variant arm the instance drew; None: no experiment on this journey
    arm: Arm | None = None


@dataclass(slots=True)
class Decision:
    """The governor's answer. `outcome` SEND means: dispatch on `channel` now.

    Treat it as immutable; not `frozen` only because that makes building one (once per
    decision) several times slower. Nothing hashes decisions.
    """

    outcome: str
    channel: Channel | None
    reason: str | None
    explanation: str
    until: datetime | None = None
    handoff: Handoff | None = None
    #: extra ledger keys that explain a planned decision (None: the SPEC's keys only)
    extra: dict[str, Any] | None = None


def held_out(channel: Channel | None, arm: Arm, extra: dict[str, Any] | None = None) -> Decision:
    """A control group's step, decided to the end as a send on `channel`: not sent, and
    not counted against any cap."""
    group = (
        "the global control group"
        if arm.name == "holdout:global"
        else ("the journey's control group")
    )
    return Decision(
        HELD_OUT,
        channel,
        arm.name,
        f"would have been sent on {channel}, but the customer is in {group}: "
        "nothing is sent and no cap counts it",
        extra=extra,
    )


#: channel (or any cap scope) <-> the small code CapUsage packs with each send time
_CODES: dict[str, int] = {}
_SCOPES: list[str] = []
_CODE_BITS = 4  # 16 codes: the six channels, and room for more
_MICRO = timedelta(microseconds=1)


def _code(channel: str) -> int:
    code = _CODES.get(channel)
    if code is None:
        if len(_SCOPES) >= 1 << _CODE_BITS:
            raise ValueError(f"too many capped channels for CapUsage: {channel!r}")
        code = _CODES[str(channel)] = len(_SCOPES)
        _SCOPES.append(str(channel))
    return code


for _channel in Channel:  # registered up front: governors on several threads only read
    _code(_channel.value)


class CapUsage:
    """One customer's capped sends, oldest first, within the longest window.

    Packed, one 64-bit integer per send: microseconds since the epoch, shifted, and the
    channel's code in the low bits. The governor keeps one per customer who sent within
    a week; as a list of (datetime, str) tuples that was ~480 bytes for two sends, packed
    it is ~130 (a million customers: the difference is ~170 MB per partition).
    """

    __slots__ = ("packed",)

    def __init__(self, sends: Iterable[tuple[datetime, str]] = ()) -> None:
        self.packed: array[int] = array("q")
        for at, channel in sends:
            self.record(at, channel)

    def __len__(self) -> int:
        return len(self.packed)

    @property
    def sends(self) -> list[tuple[datetime, str]]:
        """(time, channel) of each send, oldest first."""
        mask = (1 << _CODE_BITS) - 1
        return [(from_micros(p >> _CODE_BITS), _SCOPES[p & mask]) for p in self.packed]

    def last_at(self) -> datetime | None:
        """The time of the latest send, if any."""
        return from_micros(self.packed[-1] >> _CODE_BITS) if self.packed else None

    def prune(self, now: datetime, longest: timedelta) -> None:
        """Forget sends no window ending at `now` or later can count (at or before
        `now - longest`)."""
        packed = self.packed
        # every send at or before the cutoff packs below this, whatever its channel
        below = (to_micros(now - longest) + 1) << _CODE_BITS
        drop = 0
        while drop < len(packed) and packed[drop] < below:
            drop += 1
        if drop:
            del packed[:drop]

    def count(self, rule: CapRule, now: datetime) -> int:
        """How many sends count for `rule` at `now` (newest first; stops at the window)."""
        above = (to_micros(now - rule.window) + 1) << _CODE_BITS  # the window excludes its start
        mask = (1 << _CODE_BITS) - 1
        scope = rule.scope
        code = -1 if scope == "all" else _code(scope)
        n = 0
        for packed in reversed(self.packed):
            if packed < above:
                break
            if code < 0 or packed & mask == code:
                n += 1
        return n

    def in_window(self, rule: CapRule, now: datetime) -> list[datetime]:
        """Send times that count for `rule` at `now` (window excludes its start)."""
        above = (to_micros(now - rule.window) + 1) << _CODE_BITS
        mask = (1 << _CODE_BITS) - 1
        scope = rule.scope
        code = -1 if scope == "all" else _code(scope)
        return [
            from_micros(p >> _CODE_BITS)
            for p in self.packed
            if p >= above and (code < 0 or p & mask == code)
        ]

    def record(self, at: datetime, channel: str) -> None:
        """A capped send at `at` on `channel` (sends come in time order)."""
        self.packed.append((to_micros(at) << _CODE_BITS) | _code(channel))

    def release(self, at: datetime, channel: str) -> bool:
        """Forget one send at `at` on `channel` (it failed at the provider); whether found."""
        packed = (to_micros(at) << _CODE_BITS) | _code(channel)
        try:
            self.packed.remove(packed)
        except ValueError:
            return False
        return True


def is_capped(policy: Policy, category: Category, channel: Channel) -> bool:
    """Whether a send of `category` on `channel` is capped and counted."""
    return category in policy.capped_categories and channel not in policy.uncapped_channels


def full_times(rule: CapRule, usage: CapUsage, now: datetime) -> list[datetime] | None:
    if not usage.packed or usage.count(rule, now) < rule.limit:
        return None if rule.limit > 0 else []
    return usage.in_window(rule, now)


def room_at(rule: CapRule, times: list[datetime]) -> datetime | None:
    """Earliest time the rule's window has room again, given the counted send times."""
    if rule.limit == 0:
        return None
    ordered = sorted(times)
    return ordered[len(ordered) - rule.limit] + rule.window


def quiet_at(policy: Policy, tz: str, now: datetime) -> tuple[bool, datetime, str]:
    """Whether `now` is in quiet hours for zone `tz`; when it ends; local time text."""
    qh = policy.quiet_hours
    local = now.astimezone(zone(tz))
    clock = local.time()  # naive: `time()` drops the zone
    text = _HH_MM[local.hour * 60 + local.minute]
    if qh is None:
        return False, now, text
    start, end = qh.start, qh.end
    quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return False, now, text
    day = local.date()
    if start > end and clock >= start:
        day = day + timedelta(days=1)
    resume = datetime.combine(day, end, tzinfo=zone(tz))
    return True, resume.astimezone(now.tzinfo), text


# "HH:MM" for each minute of the day: `strftime` costs ~2 µs and runs once per decision.
_HH_MM = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))


def hhmm(value: time) -> str:
    return _HH_MM[value.hour * 60 + value.minute]


def own_cap_full(
    policy: Policy, channel: Channel, usage: CapUsage, now: datetime
) -> CapRule | None:
    """The first cap scoped to `channel` alone that is full at `now`, if any."""
    for rule in policy.caps:
        if rule.scope == channel and full_times(rule, usage, now) is not None:
            return rule
    return None


def choose_channel(
    req: SendRequest, policy: Policy, usage: CapUsage
) -> tuple[Channel | None, str | None]:
    """Step (1): the channel, or None with the reason nothing was usable."""
    usable = req.usable
    check_caps = (
        bool(usage.packed) and req.category in policy.capped_categories and bool(policy.caps)
    )
    blocked_by_cap: str | None = None
    preferred = req.preferred
    order = req.channels
    if preferred is not None and preferred in order:
        order = (Channel(preferred), *order)
    for channel in order:
        if channel not in usable:
            continue
        if check_caps and channel not in policy.uncapped_channels:
            full = own_cap_full(policy, channel, usage, req.now)
            if full is not None:
                blocked_by_cap = blocked_by_cap or full.reason
                continue
        return channel, None
    return None, blocked_by_cap or "unreachable"


# ---- SPEC §4, one step each (the planned path in `domain.selection` uses them too) ----


def unchosen(req: SendRequest, why: str) -> Decision:
    """Step (1) found no channel: suppressed, `unreachable` or the first full own cap."""
    names = ", ".join(req.channels)
    if why == "unreachable":
        text = f"no usable channel among {names} (missing address, no consent or opted out)"
    else:
        text = f"the only usable channels have reached their own cap ({why}); nothing left among {names}"
    return Decision(SUPPRESSED, None, why, text)


def suppression(req: SendRequest, channel: Channel, policy: Policy) -> Decision | None:
    """Step (2): a suppression rule that holds the send back, as its decision."""
    now = req.now
    for rule in policy.suppressions:
        if req.category not in rule.categories:
            continue
        seen = req.event_times.get(rule.after_event)
        if seen is not None and seen <= now < seen + rule.window:
            return Decision(
                SUPPRESSED,
                channel,
                rule.reason,
                f"{req.category} message within {format_duration(rule.window)} after "
                f"{rule.after_event} at {format_timestamp(seen)}",
            )
    return None


def in_quiet_hours(req: SendRequest, channel: Channel, policy: Policy) -> bool:
    """Whether quiet hours apply to this send on `channel` at `req.now` (step 3)."""
    qh = policy.quiet_hours
    return (
        req.category is not Category.TRANSACTIONAL
        and qh is not None
        and channel in qh.channels
        and req.category in qh.categories
        and quiet_at(policy, req.timezone, req.now)[0]
    )


def quiet_hours(req: SendRequest, channel: Channel, policy: Policy) -> Decision | None:
    """Step (3): quiet hours on `channel`: deferred to their end, local time."""
    qh = policy.quiet_hours
    if (
        req.category is Category.TRANSACTIONAL
        or qh is None
        or channel not in qh.channels
        or req.category not in qh.categories
    ):
        return None
    quiet, resume, local = quiet_at(policy, req.timezone, req.now)
    if not quiet:
        return None
    return Decision(
        DEFERRED,
        channel,
        "quiet_hours",
        f"quiet hours {hhmm(qh.start)}–{hhmm(qh.end)} in {req.timezone} "
        f"(it was {local} there): deferred to {hhmm(qh.end)} local "
        f"({format_timestamp(resume)})",
        until=resume,
    )


def all_channel_caps(
    req: SendRequest, channel: Channel, policy: Policy, usage: CapUsage
) -> Decision | None:
    """Step (4): a full all-channel cap: promotional suppressed, lifecycle deferred."""
    if not is_capped(policy, req.category, channel):
        return None
    now = req.now
    full = [
        (rule, times)
        for rule in policy.caps
        if rule.scope == "all"
        if (times := full_times(rule, usage, now)) is not None
    ]
    if not full:
        return None
    cap, times = full[0]
    counted = (
        f"{len(times)} of {cap.limit} capped messages in the last {format_duration(cap.window)}"
    )
    if req.category is Category.PROMOTIONAL:
        return Decision(
            SUPPRESSED,
            channel,
            cap.reason,
            f"all-channel cap full ({counted}): promotional messages are dropped",
        )
    room: datetime | None = None
    for candidate, candidate_times in full:
        at = room_at(candidate, candidate_times)
        if at is None:
            room = None
            cap = candidate
            break
        if room is None or at > room:
            room, cap = at, candidate
    counted = (
        f"{len(usage.in_window(cap, now))} of {cap.limit} capped messages "
        f"in the last {format_duration(cap.window)}"
    )
    if room is None or room - req.first_due > policy.max_deferral:
        return Decision(
            SUPPRESSED,
            channel,
            cap.reason,
            f"all-channel cap full ({counted}) and no room within "
            f"{format_duration(policy.max_deferral)} of the step first coming due "
            f"({format_timestamp(req.first_due)}): dropped",
        )
    return Decision(
        DEFERRED,
        channel,
        cap.reason,
        f"all-channel cap full ({counted}): deferred to {format_timestamp(room)}, "
        "when the window has room",
        until=room,
    )


def sent(req: SendRequest, channel: Channel, how: str | None = None) -> Decision:
    """Every check passed: send on `channel` (a handoff when it continues elsewhere).

    `how` says why this channel, when it was not simply the first usable one."""
    handoff = None
    eng = req.engagement
    if eng is not None and eng.channel != channel:
        handoff = eng
    if how is None:
        first = "preferred channel" if req.preferred == channel else "first usable channel"
        how = f"{first} of {', '.join(req.channels)}"
    text = f"sent on {channel}: {how}"
    if req.category is Category.TRANSACTIONAL:
        text += " (transactional: no caps or quiet hours)"
    if handoff is not None:
        text += f"; continues from their {handoff.channel} ({handoff.action} at {handoff.at})"
    return Decision(SEND, channel, None, text, handoff=handoff)


def decide(req: SendRequest, policy: Policy, usage: CapUsage) -> Decision:
    """Decide one send request in the order of SPEC §4."""
    if req.exited:
        return Decision(
            SUPPRESSED,
            None,
            "exited",
            "the journey's condition no longer held when the deferred send came due "
            "(the customer left the journey)",
        )
    if req.plan is not None:
        # a step with channel rules (affinity, on_block, send time, digest, topic)
        from omniconsole.domain.selection import decide_planned

        planned = decide_planned(req, policy, usage)
        if req.arm is not None and req.arm.held_out and planned.outcome == SEND:
            return held_out(planned.channel, req.arm, planned.extra)
        return planned
    usage.prune(req.now, policy.longest_window)
    channel, why = choose_channel(req, policy, usage)
    if channel is None:
        return unchosen(req, why or "unreachable")
    blocked = (
        suppression(req, channel, policy)
        or quiet_hours(req, channel, policy)
        or all_channel_caps(req, channel, policy, usage)
    )
    if blocked is not None:
        return blocked
    if req.arm is not None and req.arm.held_out:
        return held_out(channel, req.arm)
    return sent(req, channel)
