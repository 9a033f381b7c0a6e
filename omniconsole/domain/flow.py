"""What happens to one customer when events arrive and timers come due (SPEC §2, §3, §5).

`run_customer` is a generator: it applies the customer's events and due timers in time
order and, whenever a step wants to send, yields a `SendRequest` and waits for the
governor's `Decision` to be sent back in. Whoever drives it (the profile actor) decides
how the request reaches the governor; the domain stays free of actors.

Order at one instant: an event comes before a timer due at the same time; timers due
at the same time fire in the order they were set.

Over 400 lines: the journey rules are one state machine over one customer's history;
the channel rules' state lives in `channel_rules` and `channel_state`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from omniconsole.domain.assignment import Arm, Assigner
from omniconsole.domain.channel_rules import ChannelRules
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, JourneyDef, StepDef
from omniconsole.domain.events import Event
from omniconsole.domain.governor import DEFERRED, SEND, Decision, SendRequest
from omniconsole.domain.messages import Handoff
from omniconsole.domain.profile import (
    ENGAGEMENT_ACTIONS,
    START_WORDS,
    STOP_WORDS,
    Instance,
    Profile,
    SentMessage,
    Timer,
)
from omniconsole.domain.records import InstanceRecord
from omniconsole.domain.timeutil import format_timestamp

Flow = Generator[SendRequest, Decision, None]

#: events that change consent or engagement, or may re-send a step
_CONSENT_AND_ENGAGEMENT = frozenset(
    {"Unsubscribed", "Subscribed", "Inbound Message", "Message Failed", *ENGAGEMENT_ACTIONS}
)

#: a profile's remembered sends are checked for ones to forget past this many
SENT_CHECKED_FROM = 8

ACTIVE = "active"
CONVERTED = "converted"
COMPLETED = "completed"
EXPIRED = "expired"


@dataclass(slots=True)
class Effects:
    """What a flow changed besides the profile itself: journey instance rows."""

    # customer -> (journey, number) -> (profile, instance, status, ended); rows are built
    # at flush time, once, however often the instance changed in between
    instances: dict[str, dict[tuple[str, int], tuple[Profile, Instance, str, datetime | None]]] = (
        field(default_factory=dict)
    )

    def rows(self) -> list[InstanceRecord]:
        """The changed instances as store records; forgets them."""
        rows = [
            instance_row(*change)
            for changes in self.instances.values()
            for change in changes.values()
        ]
        self.instances.clear()
        return rows

    def rows_of(self, customer: str) -> list[InstanceRecord]:
        """One customer's changed instances as store records; forgets them (the profile
        is leaving memory: the rows must not keep it there)."""
        changes = self.instances.pop(customer, None)
        return [] if changes is None else [instance_row(*change) for change in changes.values()]


@dataclass(slots=True)
class TimedEvent:
    """An event with the clock time it is applied at (later than its own time if late).

    Treat it as immutable; not `frozen` because that makes building one per log line
    several times slower (and, holding an `Event`, it was never hashable).
    """

    at: datetime
    event: Event


class CustomerFlow:
    """The journey rules, bound to one config. Stateless between calls: state is the Profile."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        with_recipient: bool = True,
        available: frozenset[Channel] | None = None,
    ) -> None:
        self.config = config
        # Channels that are configured at all; None = every channel (replays).
        self.available = available
        # Live sends need the addresses and traits; dry-run replays only record.
        self.with_recipient = with_recipient
        self.journeys = {j.name: j for j in config.journeys}
        self.entries: dict[str, tuple[JourneyDef, ...]] = {}
        for journey in config.journeys:
            self.entries[journey.entry_event] = config.journeys_entered_by(journey.entry_event)
        self.suppression_events = frozenset(s.after_event for s in config.policy.suppressions)
        self.watched = {j.name: j.watched_events for j in config.journeys}
        self.on_event_steps = {
            j.name: tuple(s for s in j.steps if s.on_event is not None) for j in config.journeys
        }
        # Split once here rather than on every entry: steps timed from entry (a timer
        # each) and steps due at entry itself.
        self.timed_steps: dict[str, tuple[tuple[timedelta, str], ...]] = {
            j.name: tuple(
                (s.after, s.name)
                for s in j.steps
                if s.after is not None and s.after.total_seconds() > 0
            )
            for j in config.journeys
        }
        self.entry_steps = {
            j.name: tuple(
                s for s in j.steps if s.after is not None and s.after.total_seconds() == 0
            )
            for j in config.journeys
        }
        self.step_names = {j.name: frozenset(s.name for s in j.steps) for j in config.journeys}
        # Affinity, send time, digests, topics: None unless the config turns one on, so
        # the shipped config's flow never looks further.
        self.rules = ChannelRules.for_config(config)
        # Holdouts and variants: only the journeys named here draw an arm at entry (none
        # in the shipped config, so the rest of the flow never looks at arms).
        self.assigner = Assigner(config)
        self.experimented = frozenset(self.assigner.journeys)

    # ---- driving ----

    def run(
        self,
        profile: Profile,
        events: Sequence[TimedEvent],
        horizon: datetime | None,
        effects: Effects,
    ) -> Flow:
        """Apply `events` and every timer due before `horizon` (all timers if None), in order."""
        index = 0
        count = len(events)
        timers = profile.timers
        while True:
            event = events[index] if index < count else None
            timer = timers[0] if timers and (horizon is None or timers[0].due < horizon) else None
            if timer is not None and (event is None or timer.due < event.at):
                timers.pop(0)
                yield from self.fire(profile, timer, effects)
            elif event is not None:
                index += 1
                yield from self.apply(profile, event.at, event.event, effects)
            else:
                return

    # ---- events ----

    def apply(self, profile: Profile, now: datetime, event: Event, effects: Effects) -> Flow:
        """Apply one event at clock time `now`."""
        rules = self.rules
        if event.kind == "identify":
            profile.traits.update(event.traits)
            if rules is not None:
                rules.on_traits(profile, event.traits)
            return
        if event.traits:
            profile.traits.update(event.traits)
            if rules is not None:
                rules.on_traits(profile, event.traits)
        name = event.name or ""
        props = event.properties
        if name in self.suppression_events:
            profile.event_times[name] = now
        # a topic's (un)subscribe is the topic's alone, not the channel's
        topical = rules is not None and rules.on_event(profile, now, name, props)
        if name not in _CONSENT_AND_ENGAGEMENT:
            pass  # most events: journeys only
        elif name == "Unsubscribed" or name == "Subscribed":
            channel = props.get("channel")
            if isinstance(channel, str) and not topical:
                if name == "Unsubscribed":
                    profile.opt_out(channel)
                else:
                    profile.opt_in(channel)
        elif name == "Inbound Message":
            channel = props.get("channel")
            channel = channel if isinstance(channel, str) and channel else Channel.SMS.value
            body = props.get("body")
            word = body.strip().casefold() if isinstance(body, str) else ""
            if word in STOP_WORDS:
                profile.opt_out(channel)
            elif word in START_WORDS:
                profile.opt_in(channel)
            else:
                # SPEC §5 (amended): a STOP/START keyword is consent, not engagement
                profile.engagement = Handoff(channel, "replied", format_timestamp(now))
        elif name in ENGAGEMENT_ACTIONS:
            channel = props.get("channel")
            if isinstance(channel, str) and channel:
                profile.engagement = Handoff(
                    channel, ENGAGEMENT_ACTIONS[name], format_timestamp(now)
                )
        elif name == "Message Failed":
            yield from self.message_failed(profile, now, props, effects)

        # instances already live see the event: conditions, goals, event-triggered steps
        for inst in list(profile.instances) if profile.instances else ():
            journey = self.journeys.get(inst.journey)
            if journey is None:
                continue
            # at the very end of its lifetime an instance is over (its expire timer, due
            # at this instant, fires after the event): no goal, no step (SPEC §5)
            lifetime = journey.lifetime
            if lifetime is not None and now >= inst.entered_at + lifetime:
                continue
            if name in self.watched[journey.name]:
                inst.seen.add(name)
            if journey.goal_event == name:
                self._end(profile, inst, CONVERTED, now, effects)
                continue
            for step in self.on_event_steps[journey.name]:
                if step.on_event == name and step.name not in inst.finished_steps:
                    yield from self.step_due(profile, journey, inst, step, now, now, effects)
                    if profile.live_instance(inst.journey, inst.number) is None:
                        break

        for journey in self.entries.get(name, ()):
            yield from self.enter(profile, journey, now, props, effects)

    def enter(
        self,
        profile: Profile,
        journey: JourneyDef,
        now: datetime,
        props: dict[str, Any],
        effects: Effects,
    ) -> Flow:
        """Start an instance of `journey` if its entry rule allows."""
        if journey.entry == "once" and journey.name in profile.entered_once:
            return
        if journey.entry == "one_live" and any(
            i.journey == journey.name for i in profile.instances
        ):
            return
        profile.entered_once.add(journey.name) if journey.entry == "once" else None
        number = profile.instance_counter.get(journey.name, 0) + 1
        profile.instance_counter[journey.name] = number
        inst = Instance(journey.name, number, now, properties=dict(props))
        timed = self.timed_steps[journey.name]
        entry_steps = self.entry_steps[journey.name]
        if journey.name in self.experimented:
            inst.arm = arm = self.assigner.arm_name(profile.customer, journey)
            variant = self.assigner.variant_steps.get((journey.name, arm or ""))
            if variant is not None:
                timed, entry_steps = variant.timed, variant.at_entry
        profile.instances.append(inst)
        for after, step_name in timed:
            profile.add_timer(
                Timer(
                    now + after, profile.next_timer_seq(), "step", journey.name, number, step_name
                )
            )
        if journey.lifetime is not None:
            profile.add_timer(
                Timer(
                    now + journey.lifetime,
                    profile.next_timer_seq(),
                    "expire",
                    journey.name,
                    number,
                    "",
                )
            )
        self._row(profile, inst, ACTIVE, None, effects)
        for step in entry_steps:
            if profile.live_instance(journey.name, number) is None:
                break
            yield from self.step_due(profile, journey, inst, step, now, now, effects)

    # ---- timers ----

    def fire(self, profile: Profile, timer: Timer, effects: Effects) -> Flow:
        """A timer came due."""
        journey = self.journeys.get(timer.journey)
        if journey is None:
            return
        inst = profile.live_instance(timer.journey, timer.instance)
        now = timer.due
        if timer.kind == "expire":
            if inst is not None:
                self._end(profile, inst, EXPIRED, now, effects)
            return
        if timer.kind == "step":
            if inst is None or not self._within_lifetime(journey, inst, now):
                return
            yield from self.step_due(
                profile, journey, inst, journey.step(timer.step), now, now, effects
            )
            return
        # a deferred send decided again: its condition is checked first
        step = journey.step(timer.step)
        if timer.resend:
            still = journey.goal_event is None or (
                inst is not None and self._within_lifetime(journey, inst, now)
            )
        else:
            still = inst is not None and self._within_lifetime(journey, inst, now)
        if still and inst is not None and _seen_any(inst, step):
            still = False
        channels = tuple(Channel(c) for c in timer.channels)
        first_due = timer.first_due or now
        req = self._request(
            profile,
            journey,
            timer.instance,
            step,
            timer.message_id,
            now,
            first_due,
            channels,
            timer.resend,
            exited=not still,
            props=inst.properties if inst else {},
            arm=self._arm(profile, journey, inst),
        )
        decision = yield req
        self._settle(profile, journey, inst, step, req, decision, effects)

    # ---- steps ----

    def step_due(
        self,
        profile: Profile,
        journey: JourneyDef,
        inst: Instance,
        step: StepDef,
        now: datetime,
        first_due: datetime,
        effects: Effects,
    ) -> Flow:
        """A step came due: send (through the governor) unless its condition no longer holds."""
        if _seen_any(inst, step):
            self._finish_step(profile, journey, inst, step, now, effects)
            return
        arm: Arm | None = None
        if inst.arm is not None:
            arm = self.assigner.arm(journey.name, inst.arm)
            variant = self.assigner.variant_steps.get((journey.name, inst.arm))
            if variant is not None:
                step = variant.steps[step.name]
        message_id = f"{profile.customer}:{journey.name}:{inst.number}:{step.name}"
        joined = None
        if self.rules is not None and step.choice is not None:
            digest = self.rules.open_digest(profile, journey, step, now)
            if digest is not None:  # a digest of this step is open: join it
                self.rules.join(digest, message_id, inst.properties)
                joined = digest.message_id
        req = self._request(
            profile,
            journey,
            inst.number,
            step,
            message_id,
            now,
            first_due,
            step.channels,
            False,
            exited=False,
            props=inst.properties,
            fresh=True,
            joined=joined,
            arm=arm,
        )
        decision = yield req
        self._settle(profile, journey, inst, step, req, decision, effects)

    def message_failed(
        self, profile: Profile, now: datetime, props: dict[str, Any], effects: Effects
    ) -> Flow:
        """Re-send a failed step once, to the first usable channel after the failed one."""
        channel = props.get("channel")
        message_id = props.get("message_id")
        journey_name = props.get("journey")
        step_name = props.get("step")
        found: SentMessage | None = None
        for sent in reversed(profile.sent):
            if isinstance(message_id, str) and message_id:
                match = sent.message_id == message_id
            elif isinstance(journey_name, str) and isinstance(step_name, str):
                match = sent.journey == journey_name and sent.step == step_name
            else:
                match = sent.channel == channel
            if match:
                found = sent
                break
        if found is None or found.resend or found.fallback_done:
            return
        if isinstance(channel, str) and channel and channel != found.channel:
            return
        journey = self.journeys.get(found.journey)
        if journey is None:
            return
        step = journey.step(found.step)
        inst = profile.live_instance(found.journey, found.instance)
        arm = self._arm(profile, journey, inst)
        if arm is not None:
            variant = self.assigner.variant_steps.get((journey.name, arm.name))
            if variant is not None:
                step = variant.steps[step.name]  # the variant's channels
        if journey.goal_event is not None and (
            inst is None or not self._within_lifetime(journey, inst, now)
        ):
            return
        if inst is not None and _seen_any(inst, step):
            return
        names = [str(c) for c in step.channels]
        if found.channel not in names:
            return
        rest = step.channels[names.index(found.channel) + 1 :]
        found.fallback_done = True
        req = self._request(
            profile,
            journey,
            found.instance,
            step,
            found.message_id + ":fallback",
            now,
            now,
            rest,
            True,
            exited=False,
            props=inst.properties if inst else {},
            arm=arm,
        )
        decision = yield req
        self._settle(profile, journey, inst, step, req, decision, effects)

    # ---- helpers ----

    def _arm(self, profile: Profile, journey: JourneyDef, inst: Instance | None) -> Arm | None:
        """The arm of a send: the instance's, or drawn again once the instance has ended."""
        if journey.name not in self.experimented:
            return None
        name = inst.arm if inst is not None else self.assigner.arm_name(profile.customer, journey)
        return self.assigner.arm(journey.name, name)

    def _request(
        self,
        profile: Profile,
        journey: JourneyDef,
        instance: int,
        step: StepDef,
        message_id: str,
        now: datetime,
        first_due: datetime,
        channels: tuple[Channel, ...],
        resend: bool,
        *,
        exited: bool,
        props: dict[str, Any],
        fresh: bool = False,
        joined: str | None = None,
        arm: Arm | None = None,
    ) -> SendRequest:
        category = journey.category
        usable = profile.usable_channels(channels, category)
        plan = None
        if self.rules is not None and not exited:
            planned, plan, props = self.rules.plan(
                profile, journey, step, message_id, channels, frozenset(usable), now,
                resend=resend, fresh=fresh, joined=joined, props=props,
            )  # fmt: skip
            if plan is not None:  # the rules may take channels away: keep the list's order
                usable = tuple([c for c in usable if c in planned])
        available = self.available
        return SendRequest(
            customer=profile.customer,
            seq=profile.next_decision_seq(),
            message_id=message_id,
            journey=journey.name,
            instance=instance,
            step=step.name,
            category=category,
            channels=channels,
            usable=usable if available is None else tuple([c for c in usable if c in available]),
            preferred=profile.preferred_channel,
            timezone=profile.timezone,
            now=now,
            first_due=first_due,
            # not copied: the governor reads it while this flow waits for its decision,
            # and nothing reads it after
            event_times=profile.event_times,
            engagement=profile.engagement,
            resend=resend,
            exited=exited,
            recipient=profile.recipient() if self.with_recipient else None,
            properties=props,
            plan=plan,
            arm=arm,
        )

    def _settle(
        self,
        profile: Profile,
        journey: JourneyDef,
        inst: Instance | None,
        step: StepDef,
        req: SendRequest,
        decision: Decision,
        effects: Effects,
    ) -> None:
        now = req.now
        if req.plan is not None and self.rules is not None:
            self.rules.settled(
                profile, req.plan, req.message_id, journey.name, step.name, req.properties,
                decision,
            )  # fmt: skip
        if decision.outcome == DEFERRED and decision.until is not None:
            profile.add_timer(
                Timer(
                    decision.until,
                    profile.next_timer_seq(),
                    "redecide",
                    journey.name,
                    req.instance,
                    step.name,
                    req.message_id,
                    req.first_due,
                    tuple(req.channels),
                    req.resend,
                )
            )
            if inst is not None and profile.live_instance(inst.journey, inst.number) is not None:
                self._row(profile, inst, ACTIVE, None, effects)
            return
        if decision.outcome == SEND and decision.channel is not None:
            profile.remember_sent(
                SentMessage(
                    req.message_id,
                    journey.name,
                    req.instance,
                    step.name,
                    str(decision.channel),
                    now,
                    req.resend,
                )
            )
            if self.rules is not None:
                self.rules.sent(profile, str(decision.channel), now)
            if len(profile.sent) > SENT_CHECKED_FROM:
                self.forget_sent(profile, now)
        if inst is not None and not req.resend:
            self._finish_step(profile, journey, inst, step, now, effects)

    def _finish_step(
        self,
        profile: Profile,
        journey: JourneyDef,
        inst: Instance,
        step: StepDef,
        now: datetime,
        effects: Effects,
    ) -> None:
        inst.finished_steps.add(step.name)
        if profile.live_instance(inst.journey, inst.number) is None:
            return
        # A journey with a lifetime lives it out (a goal may still come); others end
        # once every step has had its final decision.
        if journey.lifetime is None and inst.finished_steps >= self.step_names[journey.name]:
            self._end(profile, inst, COMPLETED, now, effects)
        else:
            self._row(profile, inst, ACTIVE, None, effects)

    @staticmethod
    def _within_lifetime(journey: JourneyDef, inst: Instance, now: datetime) -> bool:
        return journey.lifetime is None or now < inst.entered_at + journey.lifetime

    def _end(
        self, profile: Profile, inst: Instance, status: str, now: datetime, effects: Effects
    ) -> None:
        profile.instances = [i for i in profile.instances if i is not inst]
        self._row(profile, inst, status, now, effects)
        journey = self.journeys.get(inst.journey)
        if profile.sent and journey is not None and journey.goal_event is not None:
            self.forget_sent(profile, now)

    def can_fall_back(self, profile: Profile, sent: SentMessage, now: datetime) -> bool:
        """Whether a `Message Failed` for `sent` could still re-send its step, now or
        later: not a re-send, not re-sent already, and not of an instance the customer
        has left (goal reached, lifetime over: those never come back)."""
        if sent.resend or sent.fallback_done:
            return False
        journey = self.journeys.get(sent.journey)
        if journey is None:
            return False
        if journey.goal_event is None:
            return True
        inst = profile.live_instance(sent.journey, sent.instance)
        return inst is not None and self._within_lifetime(journey, inst, now)

    def forget_sent(self, profile: Profile, now: datetime) -> None:
        """Forget the sends no `Message Failed` can ever act on (SPEC §5 has no bound on a
        failure's age, so nothing that still can is dropped).

        A failure is matched to the most recent send with its message id, else with
        its journey and step, else on its channel. A send that cannot fall back still
        matters while it hides an older one that can (same channel, or same journey and
        step): the failure must find it, and do nothing. Otherwise it is forgotten.
        """
        channels: set[str] = set()
        steps: set[tuple[str, str]] = set()
        kept: list[SentMessage] = []
        for sent in profile.sent:  # oldest first
            if self.can_fall_back(profile, sent, now):
                channels.add(sent.channel)
                steps.add((sent.journey, sent.step))
                kept.append(sent)
            elif sent.channel in channels or (sent.journey, sent.step) in steps:
                kept.append(sent)
        if len(kept) < len(profile.sent):
            profile.sent = kept

    @staticmethod
    def _row(
        profile: Profile, inst: Instance, status: str, ended: datetime | None, effects: Effects
    ) -> None:
        changes = effects.instances.get(profile.customer)
        if changes is None:
            changes = effects.instances[profile.customer] = {}
        changes[(inst.journey, inst.number)] = (profile, inst, status, ended)


def _seen_any(inst: Instance, step: StepDef) -> bool:
    """Whether the instance has seen one of the events that cancel `step`."""
    return bool(step.unless_since_entry) and not inst.seen.isdisjoint(step.unless_since_entry)


def instance_row(
    profile: Profile, inst: Instance, status: str, ended: datetime | None
) -> InstanceRecord:
    """An instance as the store shows it, with its next pending step."""
    next_step: str | None = None
    next_due: str | None = None
    if status == ACTIVE:
        for timer in profile.timers:
            if (
                timer.kind != "expire"
                and timer.journey == inst.journey
                and timer.instance == inst.number
            ):
                next_step, next_due = timer.step, format_timestamp(timer.due)
                break
    return InstanceRecord(
        profile.customer,
        inst.journey,
        inst.number,
        format_timestamp(inst.entered_at),
        status,
        None if ended is None else format_timestamp(ended),
        next_step,
        next_due,
    )
