"""SPEC §4's steps as functions, for the governor's planned path (`domain.selection`).

`governor.decide` keeps the same steps inline: it runs once per decision of every
replay, and calls there cost measurably. `test_an_empty_plan_decides_exactly_as_the_spec`
(tests/properties) keeps both the same, decision for decision.
"""

from __future__ import annotations

from datetime import datetime

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import Policy
from omniconsole.domain.governor import (
    DEFERRED,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    full_times,
    hhmm,
    is_capped,
    quiet_at,
    room_at,
)
from omniconsole.domain.timeutil import format_duration, format_timestamp


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
