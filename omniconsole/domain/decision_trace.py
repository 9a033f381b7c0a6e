"""One governor decision taken apart, stage by stage, for `omniconsole explain` (SPEC §4).

`trace_decision` looks at the same request, policy and cap usage that `decide` gets,
before it decides, and says in words what each stage saw: each channel tried and why
it was or was not usable (address, consent and the event that changed it, its own cap
with the sends it counted), the suppression rules, quiet hours in the customer's local
time, and the all-channel caps with the sends that filled them. It never decides
itself: the caller compares the stage it names with `decide`'s answer and refuses to
explain when they disagree.

Pure; nothing here runs on the engine's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import CapRule, Policy
from omniconsole.domain.governor import SendRequest, is_capped
from omniconsole.domain.profile import Profile, zone
from omniconsole.domain.timeutil import format_duration, format_timestamp


@dataclass(frozen=True, slots=True)
class CountedSend:
    """A capped send that counts in a window: when, where, which message."""

    at: datetime
    channel: str
    message_id: str


@dataclass(frozen=True, slots=True)
class CapCheck:
    """One cap at the moment of a decision: the sends it counted against its limit."""

    reason: str  # cap:<scope>:<window>
    limit: int
    counted: tuple[CountedSend, ...]

    @property
    def full(self) -> bool:
        """Whether the cap has no room."""
        return len(self.counted) >= self.limit


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """One channel of the step's list, as the governor tried it."""

    channel: str
    usable: bool
    words: str
    cap: CapCheck | None = None  # the channel's own cap, when it was checked


@dataclass(slots=True)
class StageTrace:
    """What each stage of SPEC §4 saw for one request (before the decision)."""

    channels: list[ChannelCheck] = field(default_factory=list)
    chosen: str | None = None
    suppressions: list[str] = field(default_factory=list)
    suppressed_by: str | None = None  # the rule's reason code when one applied
    quiet_hours: str | None = None
    quiet: bool = False
    caps: list[CapCheck] = field(default_factory=list)


def counted(log: Sequence[CountedSend], rule: CapRule, now: datetime) -> tuple[CountedSend, ...]:
    """The sends of `log` that count for `rule` at `now` (its window excludes its start)."""
    start = now - rule.window
    return tuple(
        s for s in log if start < s.at <= now and (rule.scope == "all" or s.channel == rule.scope)
    )


def _unusable(
    profile: Profile,
    channel: Channel,
    category: Category,
    available: frozenset[Channel] | None,
    causes: Mapping[str, str],
) -> str:
    """Why `channel` cannot carry a `category` message to this customer, in words."""
    if available is not None and channel not in available:
        return "not configured on this service"
    traits, out = profile.traits, profile.opted_out

    def missing(trait: str, what: str) -> str:
        cause = causes.get(f"trait:{trait}")
        return f"no {what}" + (f" (last changed by {cause})" if cause else "")

    def opted(key: str) -> str:
        cause = causes.get(f"consent:{key}")
        return f"opted out of {key}" + (f" by {cause}" if cause else "")

    if channel is Channel.EMAIL:
        if not profile.has("email"):
            return missing("email", "email address")
        return opted("email")
    if channel in (Channel.SMS, Channel.WHATSAPP, Channel.RCS) and not profile.has("phone"):
        return missing("phone", "phone number")
    if channel is Channel.SMS:
        return opted("sms")
    if channel is Channel.WHATSAPP:
        if traits.get("whatsapp_opt_in") is not True:
            return missing("whatsapp_opt_in", "WhatsApp opt-in (whatsapp_opt_in is not true)")
        return opted("whatsapp")
    if channel is Channel.RCS:
        if traits.get("rcs_capable") is not True:
            return missing("rcs_capable", "RCS-capable device (rcs_capable is not true)")
        return opted("sms" if "sms" in out else "rcs")
    if channel is Channel.PUSH:
        if not profile.has("push_token"):
            return missing("push_token", "push token")
        return opted("push")
    return "not usable"


def _usable_words(profile: Profile, channel: Channel, category: Category) -> str:
    if channel is Channel.IN_APP:
        return "usable (the in-app inbox is always there)"
    soft = category is Category.TRANSACTIONAL and channel.value in profile.opted_out
    return "usable" + (
        " (transactional: an email/push unsubscribe does not block it)" if soft else ""
    )


def trace_decision(
    req: SendRequest,
    policy: Policy,
    profile: Profile,
    log: Sequence[CountedSend],
    available: frozenset[Channel] | None,
    causes: Mapping[str, str],
) -> StageTrace:
    """What the governor's stages see for `req`, with the customer's counted sends `log`."""
    trace = StageTrace()
    now = req.now
    # as `choose_channel`: own caps are checked only when some send is still within the
    # longest window (the governor prunes the rest before deciding)
    recent = any(s.at > now - policy.longest_window for s in log)
    capped = req.category in policy.capped_categories
    order = req.channels
    if req.preferred is not None and req.preferred in order:
        order = (Channel(req.preferred), *(c for c in order if c.value != req.preferred))
    for channel in order:
        if channel not in req.usable:
            words = _unusable(profile, channel, req.category, available, causes)
            trace.channels.append(ChannelCheck(channel.value, False, f"not usable: {words}"))
            continue
        own: CapCheck | None = None
        checks: list[CapCheck] = []
        if capped and channel not in policy.uncapped_channels:
            for cap in policy.caps:
                if cap.scope == channel.value:
                    check = CapCheck(cap.reason, cap.limit, counted(log, cap, now))
                    checks.append(check)
                    if recent and check.full:
                        own = check
                        break
        if own is not None:
            trace.channels.append(
                ChannelCheck(channel.value, False, f"not usable: own cap {describe_cap(own)}", own)
            )
            continue
        words = _usable_words(profile, channel, req.category)
        for check in checks:
            words += f"; own cap {describe_cap(check)}"
        if req.preferred == channel.value:
            words += "; the customer's preferred channel"
        trace.channels.append(ChannelCheck(channel.value, True, words))
        trace.chosen = channel.value
        break
    if trace.chosen is None:
        return trace
    for rule in policy.suppressions:
        if req.category not in rule.categories:
            trace.suppressions.append(
                f"{rule.reason}: applies to {', '.join(sorted(rule.categories))} only"
            )
            continue
        seen = req.event_times.get(rule.after_event)
        window = format_duration(rule.window)
        if seen is None:
            trace.suppressions.append(f"{rule.reason}: no {rule.after_event} before")
        elif seen <= now < seen + rule.window:
            trace.suppressions.append(
                f"{rule.reason}: {rule.after_event} at {format_timestamp(seen)}, within "
                f"{window} (until {format_timestamp(seen + rule.window)})"
            )
            trace.suppressed_by = rule.reason
            return trace
        else:
            trace.suppressions.append(
                f"{rule.reason}: {rule.after_event} at {format_timestamp(seen)} is more than "
                f"{window} before"
            )
    transactional = req.category is Category.TRANSACTIONAL
    chosen = Channel(trace.chosen)
    qh = policy.quiet_hours
    if transactional:
        trace.quiet_hours = "transactional: quiet hours do not apply"
    elif qh is None or chosen not in qh.channels or req.category not in qh.categories:
        trace.quiet_hours = f"quiet hours do not apply to {chosen} {req.category} messages"
    else:
        local = now.astimezone(zone(req.timezone))
        clock = local.time().replace(tzinfo=None)
        start, end = qh.start, qh.end
        quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
        span = f"{start.strftime('%H:%M')}–{end.strftime('%H:%M')}"
        trace.quiet = quiet
        trace.quiet_hours = (
            f"it was {local.strftime('%H:%M')} ({local.strftime('%a')}) in {req.timezone}: "
            + (f"inside quiet hours {span}" if quiet else f"outside quiet hours {span}")
        )
        if quiet:
            return trace
    if is_capped(policy, req.category, chosen):
        trace.caps = [
            CapCheck(cap.reason, cap.limit, counted(log, cap, now))
            for cap in policy.caps
            if cap.scope == "all"
        ]
    return trace


def describe_cap(check: CapCheck) -> str:
    """'(cap:all:24h): 2 of 2 in the window, full — m1 (email) at T, m2 (sms) at T'."""
    sends = ", ".join(
        f"{s.message_id} ({s.channel}) at {format_timestamp(s.at)}" for s in check.counted
    )
    room = "full" if check.full else "room left"
    head = f"({check.reason}): {len(check.counted)} of {check.limit} in the window, {room}"
    return head + (f" — {sends}" if sends else "")
