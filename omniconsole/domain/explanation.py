"""Why a customer got, or did not get, each message: their history re-run with a trace.

A customer's decisions depend only on that customer's history (SPEC §6), so one
customer can be replayed alone: their applied events, at the clock times they were
applied, through the same `CustomerFlow` and `decide` the engine ran, in the same order
(`CustomerFlow.run`'s rule: an event before a timer due at the same instant). The
re-run is driven one event or timer at a time so it can say what each one did to the
journeys (entered, refused entry, converted, expired, a step skipped) and, for each
send request, what every stage of the governor saw (`decision_trace`).

It also produces the ledger lines the engine would have written; the caller compares
them with the stored ones and explains nothing when they differ (a different config
or engine wrote the store). Pure; the engine's hot path does not run any of this.

(A little over 400 lines: the re-run driver and the stories it writes change together,
and `step_fate` reads those stories; apart they would share private state.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from omniconsole.domain.channels import Channel
from omniconsole.domain.config import EngineConfig, JourneyDef
from omniconsole.domain.decision_trace import CountedSend, StageTrace, trace_decision
from omniconsole.domain.events import Event
from omniconsole.domain.flow import ACTIVE, CustomerFlow, Effects, Flow, TimedEvent
from omniconsole.domain.governor import (
    DEFERRED,
    HELD_OUT,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    decide,
    is_capped,
)
from omniconsole.domain.ledger import encode_line, ledger_line
from omniconsole.domain.profile import Instance, Profile, Timer
from omniconsole.domain.timeutil import format_duration, format_timestamp


@dataclass(slots=True)
class DecisionTrace:
    """One send request: why it was decided then, what each stage saw, the outcome."""

    at: datetime
    message_id: str
    journey: str
    instance: int
    step: str
    category: str
    trigger: str
    stages: StageTrace
    outcome: str  # as the ledger says it: sent, deferred, suppressed, held_out
    reason: str | None
    explanation: str  # the governor's own words
    until: datetime | None
    arm: str | None
    timezone: str
    line: str  # the ledger line the re-run wrote


@dataclass(slots=True)
class StepNote:
    """Something that happened to a step without a send request."""

    at: datetime
    step: str
    words: str


@dataclass(slots=True)
class InstanceStory:
    """One journey instance from entry to end."""

    journey: str
    number: int
    entered_at: datetime
    cause: str
    arm: str | None
    status: str = ACTIVE
    ended_at: datetime | None = None
    ended_by: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # watched event -> its cause words
    notes: list[StepNote] = field(default_factory=list)
    requested: set[str] = field(default_factory=set)  # steps that made a send request


@dataclass(slots=True)
class Refusal:
    """An entry event that started no instance, and why."""

    at: datetime
    journey: str
    cause: str
    words: str


@dataclass(slots=True)
class CustomerTrace:
    """The whole re-run of one customer."""

    customer: str
    events: int
    horizon: datetime | None
    decisions: list[DecisionTrace] = field(default_factory=list)
    instances: dict[tuple[str, int], InstanceStory] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    pending: list[Timer] = field(default_factory=list)  # not due before the horizon
    #: decisions whose stage-by-stage trace does not lead to the governor's answer
    disagreements: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The ledger lines of the re-run, in order."""
        return [d.line for d in self.decisions]


def event_words(event: Event, applied_at: datetime) -> str:
    """'Signed Up at 2026-03-02T10:00:00Z (evt-7-0000012, log line 14)'."""
    name = event.name or "identify"
    ids = [x for x in (event.message_id, f"log line {event.line}" if event.line else None) if x]
    tail = f" ({', '.join(ids)})" if ids else ""
    late = "" if applied_at == event.at else f", applied late at {format_timestamp(applied_at)}"
    return f"{name} at {format_timestamp(event.at)}{tail}{late}"


class _Tracer:
    def __init__(
        self,
        config: EngineConfig,
        customer: str,
        available: frozenset[Channel] | None,
        failed: frozenset[str],
    ) -> None:
        self.config = config
        self.flow = CustomerFlow(config, with_recipient=False, available=available)
        self.available = available
        self.failed = failed  # message ids whose send the provider failed (live stores)
        self.profile = Profile(customer)
        self.effects = Effects()
        self.usage = CapUsage()
        self.log: list[CountedSend] = []
        self.causes: dict[str, str] = {}  # "trait:x" / "consent:x" -> the last event changing it
        self.trace = CustomerTrace(customer, 0, None)
        self.context = ""

    # ---- driving, as CustomerFlow.run does ----

    def run(self, events: Sequence[TimedEvent], horizon: datetime | None) -> CustomerTrace:
        self.trace.events = len(events)
        self.trace.horizon = horizon
        profile = self.profile
        index = 0
        while True:
            event = events[index] if index < len(events) else None
            timers = profile.timers
            timer = timers[0] if timers and (horizon is None or timers[0].due < horizon) else None
            if timer is not None and (event is None or timer.due < event.at):
                timers.pop(0)
                self._timer(timer)
            elif event is not None:
                index += 1
                self._event(event)
            else:
                break
        self.trace.pending = list(profile.timers)
        return self.trace

    def _event(self, timed: TimedEvent) -> None:
        event, now = timed.event, timed.at
        words = event_words(event, now)
        profile = self.profile
        traits = dict(profile.traits)
        opted = set(profile.opted_out)
        name = event.name or ""
        # entry refusals are judged on the state before the event, checked after it
        entries = self.flow.entries.get(name, ()) if event.kind == "track" else ()
        refusals = [(j, _refusal(profile, j), profile.instance_counter.get(j.name, 0))
                    for j in entries]  # fmt: skip
        for inst in profile.instances:
            story = self.trace.instances.get((inst.journey, inst.number))
            journey = self.flow.journeys.get(inst.journey)
            if story is not None and journey is not None and name in journey.watched_events:
                story.seen.setdefault(name, words)
        self.context = words
        self._drive(self.flow.apply(profile, now, event, self.effects), event=timed)
        for key in set(traits) | set(profile.traits):
            if traits.get(key) != profile.traits.get(key):
                self.causes[f"trait:{key}"] = words
        for key in opted ^ profile.opted_out:
            self.causes[f"consent:{key}"] = words
        for journey, refusal, count in refusals:
            if profile.instance_counter.get(journey.name, 0) == count:
                why = refusal or "its entry rule started no instance"
                self.trace.refusals.append(Refusal(now, journey.name, words, why))
        self._settle(now, words)

    def _timer(self, timer: Timer) -> None:
        profile = self.profile
        story = self.trace.instances.get((timer.journey, timer.instance))
        journey = self.flow.journeys.get(timer.journey)
        live = profile.live_instance(timer.journey, timer.instance)
        if timer.kind == "step" and story is not None and journey is not None:
            if live is None:
                story.notes.append(
                    StepNote(timer.due, timer.step, f"came due at {format_timestamp(timer.due)}"
                             f" but the instance had already ended — {_ending(story)}")
                )  # fmt: skip
            elif journey.lifetime is not None and timer.due >= live.entered_at + journey.lifetime:
                story.notes.append(
                    StepNote(timer.due, timer.step, "came due when the instance's lifetime of "
                             f"{format_duration(journey.lifetime)} was over")
                )  # fmt: skip
        self.context = f"timer {timer.kind} due {format_timestamp(timer.due)}"
        self._drive(self.flow.fire(profile, timer, self.effects), timer=timer)
        if timer.kind == "expire" and journey is not None and journey.lifetime is not None:
            cause = f"the end of its lifetime ({format_duration(journey.lifetime)} after entry)"
        elif timer.kind == "redecide":
            cause = f"the final decision of its deferred {timer.step}"
        else:
            cause = f"{timer.step} coming due"
        self._settle(timer.due, cause)

    def _drive(
        self, flow: Flow, *, event: TimedEvent | None = None, timer: Timer | None = None
    ) -> None:
        finished = {(i.journey, i.number): set(i.finished_steps) for i in self.profile.instances}
        try:
            req = next(flow)
            while True:
                req = flow.send(self._decide(req, event, timer))
        except StopIteration:
            pass
        # a step finished without a send request was skipped by its unless_since_entry
        for inst in self.profile.instances:
            self._note_skips(inst, finished.get((inst.journey, inst.number), set()), event, timer)
        for changes in self.effects.instances.values():
            for key, (_, inst, _, _) in changes.items():
                if self.profile.live_instance(inst.journey, inst.number) is None:
                    self._note_skips(inst, finished.get(key, set()), event, timer)

    def _note_skips(
        self,
        inst: Instance,
        before: set[str],
        event: TimedEvent | None,
        timer: Timer | None,
    ) -> None:
        story = self.trace.instances.get((inst.journey, inst.number))
        journey = self.flow.journeys.get(inst.journey)
        if story is None or journey is None:
            return
        at = event.at if event is not None else timer.due if timer is not None else None
        for step_name in sorted(inst.finished_steps - before - story.requested):
            step = journey.step(step_name)
            seen = [f"{n} ({story.seen.get(n, 'seen')})" for n in step.unless_since_entry
                    if n in inst.seen]  # fmt: skip
            if at is not None and seen:
                story.notes.append(
                    StepNote(at, step_name, "skipped: unless_since_entry "
                             f"{', '.join(step.unless_since_entry)} — seen since entry: "
                             f"{'; '.join(seen)}")
                )  # fmt: skip

    def _decide(self, req: SendRequest, event: TimedEvent | None, timer: Timer | None) -> Decision:
        policy = self.config.policy
        story = self.trace.instances.get((req.journey, req.instance))
        if story is not None:
            story.requested.add(req.step)
        stages = trace_decision(req, policy, self.profile, self.log, self.available, self.causes)
        decision = decide(req, policy, self.usage)
        channel = decision.channel
        if decision.outcome == SEND and channel is not None:
            outcome, reason = "sent", None
            if is_capped(policy, req.category, channel):
                self.usage.record(req.now, str(channel))
                if req.message_id not in self.failed:  # a failed send is released at once
                    self.log.append(CountedSend(req.now, str(channel), req.message_id))
                else:
                    self.usage.sends.pop()
        else:
            outcome, reason = decision.outcome, decision.reason
        line = encode_line(ledger_line(req, decision, outcome, reason))
        if not _agrees(stages, decision):
            self.trace.disagreements.append(
                f"{req.message_id} at {format_timestamp(req.now)}: the stages traced do not"
                f" lead to {outcome} ({reason})"
            )
        self.trace.decisions.append(
            DecisionTrace(
                req.now, req.message_id, req.journey, req.instance, req.step,
                str(req.category), self._trigger(req, event, timer), stages, outcome, reason,
                decision.explanation, decision.until if outcome == "deferred" else None,
                None if req.arm is None else req.arm.name, req.timezone, line,
            )
        )  # fmt: skip
        return decision

    def _trigger(self, req: SendRequest, event: TimedEvent | None, timer: Timer | None) -> str:
        if req.resend:
            return (
                f"a re-send after {self.context}: to the next usable channel after the failed one"
            )
        if timer is not None and timer.kind == "redecide":
            return f"decided again: it had been deferred to {format_timestamp(timer.due)}"
        journey = self.flow.journeys.get(req.journey)
        step = journey.step(req.step) if journey is not None else None
        if timer is not None and step is not None and step.after is not None:
            after = step.after
            story = self.trace.instances.get((req.journey, req.instance))
            if story is not None:
                after = timer.due - story.entered_at
            return f"came due {format_duration(after)} after entry"
        if step is not None and step.on_event is not None:
            return f"on {step.on_event}, its first since entry: {self.context}"
        return f"at entry, by {self.context}"

    def _settle(self, now: datetime, cause: str) -> None:
        for changes in self.effects.instances.values():
            for key, (_, inst, status, ended) in changes.items():
                story = self.trace.instances.get(key)
                if story is None:
                    story = InstanceStory(key[0], key[1], inst.entered_at, cause, inst.arm)
                    self.trace.instances[key] = story
                if status != ACTIVE and story.status == ACTIVE:
                    story.status, story.ended_at, story.ended_by = status, ended or now, cause
        self.effects.instances.clear()


def _agrees(stages: StageTrace, decision: Decision) -> bool:
    """Whether the stage trace leads to `decision` (the trace never decides by itself)."""
    if decision.reason == "exited":
        return True
    chosen = None if decision.channel is None else str(decision.channel)
    if stages.chosen != chosen:
        return False
    if chosen is None:
        full = [c.cap.reason for c in stages.channels if c.cap is not None]
        return decision.outcome == SUPPRESSED and decision.reason == (
            full[0] if full else "unreachable"
        )
    if stages.suppressed_by is not None:
        return (decision.outcome, decision.reason) == (SUPPRESSED, stages.suppressed_by)
    if stages.quiet:
        return (decision.outcome, decision.reason) == (DEFERRED, "quiet_hours")
    full = [c.reason for c in stages.caps if c.full]
    if full:
        return decision.outcome in (DEFERRED, SUPPRESSED) and decision.reason in full
    return decision.outcome in (SEND, HELD_OUT)


def _refusal(profile: Profile, journey: JourneyDef) -> str | None:
    """Why an entry event of `journey` will start no instance, or None if it will."""
    if journey.entry == "once" and journey.name in profile.entered_once:
        return f"{journey.name} is entered once per customer, and this customer already was"
    if journey.entry == "one_live":
        live = [i for i in profile.instances if i.journey == journey.name]
        if live:
            return (
                f"{journey.name} allows one live instance at a time; #{live[0].number} "
                f"(entered {format_timestamp(live[0].entered_at)}) was still live"
            )
    return None


_ENDINGS = {
    "converted": "the goal was reached",
    "expired": "its lifetime was over",
    "completed": "every step had had its final decision",
}


def _ending(story: InstanceStory) -> str:
    if story.ended_at is None:
        return story.status
    why = _ENDINGS.get(story.status, story.status)
    return f"{why}: {story.status} at {format_timestamp(story.ended_at)} by {story.ended_by}"


def trace_customer(
    config: EngineConfig,
    customer: str,
    events: Sequence[TimedEvent],
    horizon: datetime | None,
    *,
    available: frozenset[Channel] | None = None,
    failed: frozenset[str] = frozenset(),
) -> CustomerTrace:
    """Re-run `customer`'s applied `events` (timers due before `horizon`) with a trace."""
    return _Tracer(config, customer, available, failed).run(events, horizon)


def step_fate(trace: CustomerTrace, journey: JourneyDef, number: int, step: str) -> str:
    """Why step `step` of instance `number` of `journey` never made a send request."""
    story = trace.instances.get((journey.name, number))
    if story is None:
        entered = sorted(n for j, n in trace.instances if j == journey.name)
        refused = [r for r in trace.refusals if r.journey == journey.name]
        words = (
            f"instance #{number} of {journey.name} never existed: the customer entered it "
            f"{len(entered)} time(s)"
        )
        if not entered and not refused:
            words += f" (no {journey.entry_event} event applied)"
        elif journey.entry == "once" and not refused:
            words += f" ({journey.name} is entered once per customer)"
        for r in refused:
            words += f"; {r.cause} started nothing: {r.words}"
        return words
    for note in story.notes:
        if note.step == step:
            return note.words
    definition = journey.step(step)
    if definition.on_event is not None:
        span = f"entered {format_timestamp(story.entered_at)}"
        if story.ended_at is not None:
            span += f", {_ending(story)}"
        return f"no {definition.on_event} event while the instance was live ({span})"
    for timer in trace.pending:
        if (timer.journey, timer.instance, timer.step) == (journey.name, number, step):
            return (
                f"not due yet: due at {format_timestamp(timer.due)}, after the store's clock"
                f" ({format_timestamp(trace.horizon) if trace.horizon else 'open'})"
            )
    return f"the instance ended before it came due ({_ending(story)})"
