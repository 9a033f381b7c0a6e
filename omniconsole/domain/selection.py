"""The governor's decision for a step with channel rules (`SendRequest.plan`).

The order is SPEC §4's, with the rules in their places:

    (0) a trigger that joined an open digest: `digested`, pointing at its message
    (1) the channel: preferred first, then by affinity (`select = "affinity"`) or the
        step's list; a topic the customer turned off makes a channel unusable; a
        full own-channel cap on the first choice does what `on_block` says
    (2) suppression rules
    (2a) the first trigger of a digest: deferred until the digest closes
    (2b) `send_at = "best_hour"`: deferred to the customer's best local hour when that
        is within `max_delay` of the step first coming due
    (3) quiet hours on the chosen channel: what `on_block` says
    (4) all-channel caps, as SPEC §4

`on_block` (a step's own, else the policy's `[on_block]` for the category):
`defer` waits for the chosen channel (quiet hours' end, or room in its own cap);
`suppress` drops the message with the block's reason; `switch` sends now on the next
usable channel that can go now, and defers as SPEC §4 when none can. Unset, a block
does what SPEC §4 says: a full own cap passes to the next channel, quiet hours defer.

Every decision carries its explanation as extra ledger keys (`Decision.extra`):
`affinity` (the scores of the usable channels; `preferred` when the customer's stated
preferred channel outranked them), `switched_from`, `send_at`, `digest`, `joined`,
`topic_off` — only the ones that apply.
"""

from __future__ import annotations

from typing import Any

from omniconsole.domain.channel_plan import DIGESTED, ChannelPlan
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import CapRule, Policy
from omniconsole.domain.governor import (
    DEFERRED,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    all_channel_caps,
    in_quiet_hours,
    own_cap_full,
    quiet_hours,
    room_at,
    sent,
    suppression,
    unchosen,
)
from omniconsole.domain.send_time import next_hour_start
from omniconsole.domain.timeutil import format_duration, format_timestamp


def spec_order(req: SendRequest) -> tuple[Channel, ...]:
    """SPEC §5's order: the preferred channel first when the step lists it."""
    preferred = req.preferred
    if preferred is not None and preferred in req.channels:
        return (Channel(preferred), *(c for c in req.channels if c != preferred))
    return req.channels


def decide_planned(req: SendRequest, policy: Policy, usage: CapUsage) -> Decision:
    """Decide a request whose step has channel rules (see the module docstring)."""
    plan = req.plan
    assert plan is not None
    extra = _extra(plan)
    decision = _decide(req, plan, policy, usage, extra)
    notes = "" if (decision.reason or "").startswith("consent:topic:") else _notes(plan)
    if notes:
        decision.explanation = f"{decision.explanation}; {notes}"
    if extra:
        decision.extra = extra
    return decision


def _decide(
    req: SendRequest, plan: ChannelPlan, policy: Policy, usage: CapUsage, extra: dict[str, Any]
) -> Decision:
    if plan.joined is not None:
        extra["joined"] = plan.joined
        return Decision(
            DIGESTED,
            None,
            f"digest:{plan.digest_label}",
            f"joined the open {plan.digest_label} digest of {plan.joined}: one message "
            "will list every trigger of the window",
        )
    now = req.now
    usage.prune(now, policy.longest_window)
    order = plan.order or spec_order(req)
    mode = plan.on_block
    check_caps = bool(usage.packed) and req.category in policy.capped_categories
    usable = req.usable
    # (1) the channel
    chosen: Channel | None = None
    skipped: tuple[Channel, str] | None = None
    first_full: str | None = None
    for channel in order:
        if channel not in usable:
            continue
        full = _own_cap(policy, channel, usage, req) if check_caps else None
        if full is not None:
            if mode in ("defer", "suppress") and skipped is None and first_full is None:
                return _own_cap_block(req, policy, usage, channel, full, mode)
            first_full = first_full or full.reason
            skipped = skipped or (channel, full.reason)
            continue
        chosen = channel
        break
    if chosen is None:
        if plan.topic_off and not any(c in usable for c in order):
            off = ", ".join(sorted(plan.topic_off))
            return Decision(
                SUPPRESSED,
                None,
                f"consent:topic:{plan.topic}",
                f"topic {plan.topic} is off on {off} for this customer; no other usable "
                f"channel among {', '.join(req.channels)}",
            )
        return unchosen(req, first_full or "unreachable")
    if skipped is not None and mode == "switch":
        extra["switched_from"] = {"channel": str(skipped[0]), "reason": skipped[1]}
    # (2) suppression rules
    blocked = suppression(req, chosen, policy)
    if blocked is not None:
        return blocked
    # (2a) the first trigger of a digest waits for the others
    if plan.digest_open is not None:
        closes = now + plan.digest_open
        extra["digest"] = {"window": plan.digest_label, "items": 1}
        return Decision(
            DEFERRED,
            chosen,
            f"digest:{plan.digest_label}",
            f"opens a {plan.digest_label} digest: triggers until {format_timestamp(closes)} "
            "join this message, which is decided then",
            until=closes,
        )
    # (2b) the customer's best hour
    best = plan.best_hour
    if best is not None and not req.resend:
        at = next_hour_start(now, req.timezone, best.hour)
        if at > now:
            if at - req.first_due <= plan.max_delay:
                return Decision(
                    DEFERRED,
                    chosen,
                    "send_time:best_hour",
                    f"deferred to {best.hour:02d}:00 in {req.timezone} "
                    f"({format_timestamp(at)}): {best.why()}",
                    until=at,
                )
            extra["send_at"]["late"] = True
    # (3) quiet hours
    if in_quiet_hours(req, chosen, policy):
        if mode == "suppress":
            return Decision(
                SUPPRESSED,
                chosen,
                "quiet_hours",
                f"quiet hours in {req.timezone} on {chosen}: on_block = suppress drops it",
            )
        if mode == "switch":
            other = _can_go_now(req, policy, usage, order, chosen, check_caps)
            if other is None:
                deferral = quiet_hours(req, chosen, policy)
                assert deferral is not None
                deferral.explanation += "; no other usable channel could go now"
                return deferral
            extra["switched_from"] = {"channel": str(chosen), "reason": "quiet_hours"}
            chosen = other
        else:
            deferral = quiet_hours(req, chosen, policy)
            assert deferral is not None
            return deferral
    # (4) all-channel caps
    capped = all_channel_caps(req, chosen, policy, usage)
    if capped is not None:
        return capped
    if plan.scores and req.preferred == chosen:
        extra["preferred"] = str(chosen)  # a stated preference outranked the scores
    return sent(req, chosen, _how(req, plan, chosen, extra))


def _own_cap(policy: Policy, channel: Channel, usage: CapUsage, req: SendRequest) -> CapRule | None:
    if channel in policy.uncapped_channels:
        return None
    return own_cap_full(policy, channel, usage, req.now)


def _own_cap_block(
    req: SendRequest,
    policy: Policy,
    usage: CapUsage,
    channel: Channel,
    rule: CapRule,
    mode: str,
) -> Decision:
    """The first choice's own cap is full and `on_block` is defer or suppress."""
    window = format_duration(rule.window)
    if mode == "defer":
        room = room_at(rule, usage.in_window(rule, req.now))
        if room is not None and room - req.first_due <= policy.max_deferral:
            return Decision(
                DEFERRED,
                channel,
                rule.reason,
                f"own cap full on {channel} ({rule.limit} per {window}): on_block = defer "
                f"waits for it, to {format_timestamp(room)}",
                until=room,
            )
        return Decision(
            SUPPRESSED,
            channel,
            rule.reason,
            f"own cap full on {channel} ({rule.limit} per {window}) and no room within "
            f"{format_duration(policy.max_deferral)} of the step first coming due: dropped",
        )
    return Decision(
        SUPPRESSED,
        channel,
        rule.reason,
        f"own cap full on {channel} ({rule.limit} per {window}): on_block = suppress drops it",
    )


def _can_go_now(
    req: SendRequest,
    policy: Policy,
    usage: CapUsage,
    order: tuple[Channel, ...],
    blocked: Channel,
    check_caps: bool,
) -> Channel | None:
    """The next usable channel after `blocked` (then before it) that can go now."""
    at = order.index(blocked)
    for channel in (*order[at + 1 :], *order[:at]):
        if channel not in req.usable:
            continue
        if check_caps and _own_cap(policy, channel, usage, req) is not None:
            continue
        if in_quiet_hours(req, channel, policy):
            continue
        return channel
    return None


def _extra(plan: ChannelPlan) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if plan.scores:
        extra["affinity"] = {str(s.channel): round(s.value, 3) for s in plan.scores}
    if plan.best_hour is not None:
        extra["send_at"] = plan.best_hour.to_json()
    if plan.digest is not None:
        extra["digest"] = plan.digest.to_json()
    if plan.topic_off:
        extra["topic_off"] = {"topic": plan.topic, "channels": sorted(plan.topic_off)}
    return extra


def _notes(plan: ChannelPlan) -> str:
    notes: list[str] = []
    digest = plan.digest
    if digest is not None:
        if digest.joined:
            notes.append(
                f"a {digest.window} digest of {digest.items} triggers (joined by "
                f"{', '.join(digest.joined)})"
            )
        else:
            notes.append(f"a {digest.window} digest that no other trigger joined")
    if plan.topic_off and plan.topic is not None and plan.joined is None:
        notes.append(f"topic {plan.topic} is off on {', '.join(sorted(plan.topic_off))}")
    return "; ".join(notes)


def _how(req: SendRequest, plan: ChannelPlan, chosen: Channel, extra: dict[str, Any]) -> str:
    """Why `chosen`, in words, for the explanation of a send."""
    parts: list[str] = []
    switched = extra.get("switched_from")
    names = ", ".join(req.channels)
    ranked = ", ".join(s.text() for s in _in_order(plan))
    if req.preferred == chosen:
        parts.append(f"preferred channel of {names}")
        if plan.scores:
            parts.append(f"a stated preference outranks affinity (engaged/sent) {ranked}")
    elif plan.scores:
        parts.append(f"affinity (engaged/sent) ranks the usable channels {ranked}")
    else:
        parts.append(f"first usable channel of {names}")
    if switched is not None:
        parts.append(f"switched from {switched['channel']} ({switched['reason']})")
    best = plan.best_hour
    if best is not None:
        if extra.get("send_at", {}).get("late"):
            parts.append(
                f"best hour {best.hour:02d}:00 is beyond the {format_duration(plan.max_delay)} "
                "delay allowed: sent now"
            )
        else:
            parts.append(f"at {best.hour:02d}:00 local, {best.why()}")
    return "; ".join(parts)


def _in_order(plan: ChannelPlan) -> list[Any]:
    order = plan.order or ()
    position = {c: i for i, c in enumerate(order)}
    return sorted(plan.scores, key=lambda s: position.get(s.channel, len(position)))
