"""A plain reference loop: SPEC §2–§6 as one straightforward single-threaded program.

The yardstick of issue "Per-core speed": `engine_vs_reference.py` replays a log with the
engine and with this program and prints the engine's events/s as a ratio to this one's.
It is a benchmark, not a second engine.

What it is: one process, one thread, everything in memory. It reads the log in file
order (parse, validate, drop duplicates by `messageId`, clamp late events to the clock),
keeps one plain record per customer, runs the journeys of the config on a single heap
of timers, decides every send with the fatigue governor's rules, and writes the ledger
in the engine's total order (time, customer, the customer's decision order) — the
same bytes as `omniconsole replay ... --partitions 1`, which
`tests/e2e/test_reference_loop.py` checks.

What it is not: no actors, store, checkpoints, resume, partitions, threads, live
channels, templates, rejects file or report (it returns the event counts). It is
written the way a competent developer would write it the first time: dicts, small
dataclasses, `datetime`, `orjson`. Neither tuned nor deliberately slowed.

It reads the policy and journeys with the engine's config loader (not on the hot path),
but writes every rule itself: it imports nothing of the engine's flow, governor or
profile, so speeding those up does not speed this up.

Behaviour the SPEC leaves open follows the engine: message ids
(`customer:journey:instance:step`, a fallback re-send adds `:fallback`); which
`Message Failed` a send matches (by `message_id`, else `journey`+`step`, else its
channel); the reason when several all-channel caps are full. Like the engine, it
follows the SPEC amendment of 2026-11-30 (§5: a STOP/START keyword is consent, not
engagement); `--keyword-is-engagement` restores the older reading of both.
Where the engine departs from the SPEC otherwise, this follows the SPEC
(`benchmarks/README.md` lists where; none of it occurs in generated logs).

    python benchmarks/reference_loop.py LOG --ledger OUT.jsonl [--config DIR]
        [--until ISO_TIME] [--keyword-is-engagement]

(Over 400 lines: the plain reference program is deliberately one file — SPEC §2–§6
read straight through, with nothing shared with the engine it is measured against.)
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from omniconsole.domain.config import EngineConfig, load_config, shipped_config_dir

STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
START_WORDS = {"start", "unstop", "yes"}
OPT_OUT_ALL = {"email", "sms", "whatsapp", "push"}  # `all`: every channel but in_app
ACTIVE, CONVERTED, COMPLETED = "active", "converted", "completed"
SENT, DEFERRED, SUPPRESSED = "sent", "deferred", "suppressed"


# ---- the config, as plain records ----


@dataclass(frozen=True)
class Step:
    name: str
    channels: tuple[str, ...]
    after: timedelta | None  # from entry; 0 = at entry; None = on an event
    on_event: str | None
    unless: frozenset[str]  # events that, seen since entry, cancel the step


@dataclass(frozen=True)
class Journey:
    name: str
    category: str
    entry_event: str
    entry: str  # once | every | one_live
    lifetime: timedelta | None
    goal: str | None
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Cap:
    scope: str  # "all" or a channel
    window: timedelta
    limit: int
    reason: str  # cap:<scope>:<window>


# ---- per customer ----


@dataclass(eq=False)
class Instance:
    journey: Journey
    number: int
    entered_at: datetime
    status: str = ACTIVE
    seen: set[str] = field(default_factory=set)  # events that cancel steps, seen since entry
    finished: set[str] = field(default_factory=set)  # steps finally decided or skipped


@dataclass(eq=False)
class Sent:
    message_id: str
    instance: Instance
    step: Step
    channel: str
    resend: bool
    fallback_done: bool = False


@dataclass(eq=False)
class Customer:
    id: str
    traits: dict[str, Any] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    engagement: dict[str, str] | None = None  # the latest open/click/reply, as handoff_from
    last_seen: dict[str, datetime] = field(default_factory=dict)  # of suppression events
    entered_once: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)  # instances per journey
    instances: list[Instance] = field(default_factory=list)  # not yet ended
    sent: list[Sent] = field(default_factory=list)
    capped_sends: list[tuple[datetime, str]] = field(default_factory=list)  # (at, channel)


@dataclass(frozen=True)
class Deferred:
    """A deferred send, to be decided again when its timer comes due."""

    instance: Instance
    step: Step
    message_id: str
    first_due: datetime
    channels: tuple[str, ...]
    resend: bool


def iso(at: datetime) -> str:
    """The ledger's time: ISO 8601 UTC with `Z`, microseconds only when there are some."""
    return at.isoformat().replace("+00:00", "Z")  # every time here is in UTC


def read_event(raw: bytes) -> tuple[dict[str, Any], datetime] | str:
    """One log line as (event, its time in UTC), or the reason it is rejected (SPEC §2)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("type")
    if kind not in ("identify", "track"):
        return "field 'type' must be 'identify' or 'track'"
    user = event.get("userId")
    if not isinstance(user, str) or not user:
        return "field 'userId' must be a non-empty string"
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        return "field 'timestamp' must be a string"
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return f"unparsable timestamp {stamp!r}"
    if at.tzinfo is None:
        return f"timestamp {stamp!r} has no UTC offset or Z"
    name = event.get("event")
    if kind == "track" and (not isinstance(name, str) or not name):
        return "field 'event' must be a non-empty string for track"
    if name is not None and not isinstance(name, str):
        return "field 'event' must be a string"
    for key in ("traits", "properties"):
        if event.get(key) is not None and not isinstance(event[key], dict):
            return f"field '{key}' must be an object"
    if event.get("messageId") is not None and not isinstance(event["messageId"], str):
        return "field 'messageId' must be a string"
    return event, at.astimezone(UTC)


class ReferenceLoop:
    """The whole replay. `run` reads a log and writes a ledger; state lives in memory."""

    def __init__(self, config: EngineConfig, *, keyword_is_engagement: bool = False) -> None:
        policy = config.policy
        self.keyword_is_engagement = keyword_is_engagement
        self.journeys = [
            Journey(
                j.name, str(j.category), j.entry_event, j.entry, j.lifetime, j.goal_event,
                tuple(
                    Step(s.name, tuple(str(c) for c in s.channels), s.after, s.on_event,
                         frozenset(s.unless_since_entry))
                    for s in j.steps
                ),
            )
            for j in config.journeys
        ]  # fmt: skip
        self.capped_categories = {str(c) for c in policy.capped_categories}
        self.uncapped_channels = {str(c) for c in policy.uncapped_channels}
        self.caps = [Cap(c.scope, c.window, c.limit, c.reason) for c in policy.caps]
        self.longest_window = max((c.window for c in self.caps), default=timedelta(0))
        self.quiet = policy.quiet_hours
        self.quiet_channels = {str(c) for c in self.quiet.channels} if self.quiet else set()
        self.quiet_categories = {str(c) for c in self.quiet.categories} if self.quiet else set()
        self.suppressions = policy.suppressions
        self.max_deferral = policy.max_deferral
        self.customers: dict[str, Customer] = {}
        self.timers: list[tuple[datetime, int, Customer, Any]] = []
        self.timer_order = itertools.count()  # same instant: in the order they were set
        self.zones: dict[str, ZoneInfo] = {}
        self.counts = dict.fromkeys(("read", "applied", "rejected", "duplicates", "late"), 0)
        self.out: IO[bytes] | None = None
        self.instant: datetime | None = None  # the time of the ledger lines in `pending`
        self.pending: list[tuple[str, bytes]] = []
        self.lines = 0

    # ---- the loop ----

    def run(self, log: Path, ledger: Path, until: datetime | None = None) -> dict[str, int]:
        """Replay `log`, write `ledger`; return the event counts and the ledger lines."""
        seen_ids: set[str] = set()
        clock: datetime | None = None
        counts = self.counts
        with log.open("rb") as lines, ledger.open("wb") as self.out:
            for raw in lines:
                if not raw.strip():
                    continue
                parsed = read_event(raw)
                if isinstance(parsed, str):
                    counts["read"] += 1
                    counts["rejected"] += 1
                    continue
                event, at = parsed
                if until is not None and at > until:
                    break
                counts["read"] += 1
                message_id = event.get("messageId")
                if message_id is not None:
                    if message_id in seen_ids:
                        counts["duplicates"] += 1
                        continue
                    seen_ids.add(message_id)
                counts["applied"] += 1
                if clock is not None and at < clock:
                    counts["late"] += 1
                    at = clock
                self.fire_timers(before=at)  # a timer due at `at` fires after the event
                clock = at
                customer = self.customers.get(event["userId"])
                if customer is None:
                    customer = self.customers[event["userId"]] = Customer(event["userId"])
                self.apply(customer, at, event)
            self.fire_timers(until=until)  # the clock runs on until nothing is pending
            self.flush()
        return {**counts, "ledger_lines": self.lines}

    def set_timer(self, due: datetime, customer: Customer, action: Any) -> None:
        heapq.heappush(self.timers, (due, next(self.timer_order), customer, action))

    def fire_timers(self, *, before: datetime | None = None, until: datetime | None = None) -> None:
        """Fire timers in (due, order set) order: those due before `before`, or by `until`."""
        while self.timers:
            due = self.timers[0][0]
            if (before is not None and due >= before) or (until is not None and due > until):
                return
            _, _, customer, action = heapq.heappop(self.timers)
            if isinstance(action, Deferred):
                self.redecide(customer, action, due)
            else:
                instance, step = action
                if self.live(instance, due):
                    self.step_due(customer, instance, step, due)

    # ---- events (SPEC §2, §3, §5) ----

    def apply(self, customer: Customer, now: datetime, event: dict[str, Any]) -> None:
        if event.get("traits"):
            customer.traits.update(event["traits"])
        if event["type"] == "identify":
            return
        name = event["event"]
        props = event.get("properties") or {}
        if any(rule.after_event == name for rule in self.suppressions):
            customer.last_seen[name] = now
        channel = props.get("channel")
        if name in ("Unsubscribed", "Subscribed") and isinstance(channel, str):
            if name == "Unsubscribed":
                self.opt_out(customer, channel)
            else:
                self.opt_in(customer, channel)
        elif name == "Inbound Message":
            channel = channel if isinstance(channel, str) and channel else "sms"
            body = props.get("body")
            word = body.strip().casefold() if isinstance(body, str) else ""
            if word in STOP_WORDS:
                self.opt_out(customer, channel)
            elif word in START_WORDS:
                self.opt_in(customer, channel)
            if self.keyword_is_engagement or word not in STOP_WORDS | START_WORDS:
                customer.engagement = {"channel": channel, "action": "replied", "at": iso(now)}
        elif name in ("Message Opened", "Message Clicked"):
            if isinstance(channel, str) and channel:
                action = "opened" if name == "Message Opened" else "clicked"
                customer.engagement = {"channel": channel, "action": action, "at": iso(now)}
        elif name == "Message Failed":
            self.message_failed(customer, now, props)

        for instance in list(customer.instances):
            if not self.live(instance, now):
                continue
            journey = instance.journey
            if any(name in step.unless for step in journey.steps):
                instance.seen.add(name)
            if name == journey.goal:
                self.end(customer, instance, CONVERTED)
                continue
            for step in journey.steps:
                if step.on_event == name and step.name not in instance.finished:
                    self.step_due(customer, instance, step, now)
                    if instance.status != ACTIVE:
                        break
        for journey in self.journeys:
            if journey.entry_event == name:
                self.enter(customer, journey, now)

    def opt_out(self, customer: Customer, channel: str) -> None:
        if channel == "all":
            customer.opted_out |= OPT_OUT_ALL
        elif channel != "in_app":
            customer.opted_out.add(channel)

    def opt_in(self, customer: Customer, channel: str) -> None:
        if channel == "all":
            customer.opted_out.clear()
        else:
            customer.opted_out.discard(channel)

    # ---- journeys (SPEC §5) ----

    def left(self, instance: Instance, now: datetime) -> bool:
        """The customer has left the instance: its goal reached, or its lifetime over."""
        lifetime = instance.journey.lifetime
        return instance.status == CONVERTED or (
            lifetime is not None and now >= instance.entered_at + lifetime
        )

    def live(self, instance: Instance, now: datetime) -> bool:
        return instance.status == ACTIVE and not self.left(instance, now)

    def enter(self, customer: Customer, journey: Journey, now: datetime) -> None:
        if journey.entry == "once":
            if journey.name in customer.entered_once:
                return
            customer.entered_once.add(journey.name)
        if journey.entry == "one_live" and any(
            i.journey is journey and self.live(i, now) for i in customer.instances
        ):
            return
        number = customer.counters.get(journey.name, 0) + 1
        customer.counters[journey.name] = number
        instance = Instance(journey, number, now)
        customer.instances.append(instance)
        for step in journey.steps:
            if step.after:  # timed from entry
                self.set_timer(now + step.after, customer, (instance, step))
        for step in journey.steps:
            if step.after is not None and not step.after and instance.status == ACTIVE:
                self.step_due(customer, instance, step, now)

    def end(self, customer: Customer, instance: Instance, status: str) -> None:
        instance.status = status
        customer.instances.remove(instance)

    def finish_step(self, customer: Customer, instance: Instance, step: Step) -> None:
        """A step had its final decision (or was skipped); a journey without a lifetime
        ends once all of its steps have."""
        instance.finished.add(step.name)
        journey = instance.journey
        if (
            instance.status == ACTIVE
            and journey.lifetime is None
            and len(instance.finished) == len(journey.steps)
        ):
            self.end(customer, instance, COMPLETED)

    def step_due(self, customer: Customer, instance: Instance, step: Step, now: datetime) -> None:
        if instance.seen & step.unless:  # its condition no longer holds: no line
            self.finish_step(customer, instance, step)
            return
        message_id = f"{customer.id}:{instance.journey.name}:{instance.number}:{step.name}"
        self.send(customer, instance, step, message_id, now, now, step.channels, resend=False)

    def redecide(self, customer: Customer, deferred: Deferred, now: datetime) -> None:
        """A deferred send came due: its condition first, then decided again from (1)."""
        instance = deferred.instance
        # a re-send may outlive its (completed) instance; a step's own send needs it live
        gone = self.left(instance, now) if deferred.resend else not self.live(instance, now)
        exited = gone or bool(instance.seen & deferred.step.unless)
        self.send(customer, instance, deferred.step, deferred.message_id, now,
                  deferred.first_due, deferred.channels, deferred.resend, exited=exited)  # fmt: skip

    def message_failed(self, customer: Customer, now: datetime, props: dict[str, Any]) -> None:
        """Re-send the failed step once, to the first usable channel after the failed one."""
        channel, message_id = props.get("channel"), props.get("message_id")
        journey, step = props.get("journey"), props.get("step")
        found = None
        for sent in reversed(customer.sent):
            if isinstance(message_id, str) and message_id:
                match = sent.message_id == message_id
            elif isinstance(journey, str) and isinstance(step, str):
                match = sent.instance.journey.name == journey and sent.step.name == step
            else:
                match = sent.channel == channel
            if match:
                found = sent
                break
        if found is None or found.resend or found.fallback_done:
            return
        if isinstance(channel, str) and channel and channel != found.channel:
            return  # not the channel the step was last sent on
        instance, channels = found.instance, found.step.channels
        if self.left(instance, now) or instance.seen & found.step.unless:
            return
        if found.channel not in channels:
            return
        found.fallback_done = True
        rest = channels[channels.index(found.channel) + 1 :]
        self.send(customer, instance, found.step, found.message_id + ":fallback", now, now,
                  rest, resend=True)  # fmt: skip

    # ---- one send: the governor's decision (SPEC §4) and what follows ----

    def send(
        self,
        customer: Customer,
        instance: Instance,
        step: Step,
        message_id: str,
        now: datetime,
        first_due: datetime,
        channels: tuple[str, ...],
        resend: bool,
        exited: bool = False,
    ) -> None:
        category = instance.journey.category
        decision: tuple[str, str | None, str | None, datetime | None]
        if exited:
            decision = (SUPPRESSED, None, "exited", None)
        else:
            decision = self.decide(customer, category, channels, now, first_due)
        outcome, channel, reason, until = decision
        handoff = None
        if outcome == SENT:
            assert channel is not None
            engagement = customer.engagement
            if engagement is not None and engagement["channel"] != channel:
                handoff = engagement
            if category in self.capped_categories and channel not in self.uncapped_channels:
                cutoff = now - self.longest_window
                customer.capped_sends = [s for s in customer.capped_sends if s[0] > cutoff]
                customer.capped_sends.append((now, channel))
            customer.sent.append(Sent(message_id, instance, step, channel, resend))
        self.write(now, customer.id, {
            "at": iso(now),
            "customer": customer.id,
            "journey": instance.journey.name,
            "step": step.name,
            "message_id": message_id,
            "channel": channel,
            "category": category,
            "outcome": outcome,
            "reason": reason,
            "handoff_from": handoff,
        })  # fmt: skip
        if outcome == DEFERRED:
            assert until is not None
            self.set_timer(until, customer,
                           Deferred(instance, step, message_id, first_due, channels, resend))  # fmt: skip
        elif not resend:
            self.finish_step(customer, instance, step)

    def decide(
        self,
        customer: Customer,
        category: str,
        channels: tuple[str, ...],
        now: datetime,
        first_due: datetime,
    ) -> tuple[str, str | None, str | None, datetime | None]:
        """(outcome, channel, reason, deferred until) for one send, in the order of SPEC §4."""
        capped = category in self.capped_categories
        # (1) the channel: preferred first when listed, then list order; a channel whose
        # own cap is full is not usable for this send
        preferred = customer.traits.get("preferred_channel")
        order = [preferred, *channels] if preferred in channels else list(channels)
        channel, held_by_cap = None, None
        for candidate in order:
            if not self.usable(customer, candidate, category):
                continue
            if capped and candidate not in self.uncapped_channels:
                full = [
                    c for c in self.caps if c.scope == candidate and self.full(customer, c, now)
                ]
                if full:
                    held_by_cap = held_by_cap or full[0].reason
                    continue
            channel = candidate
            break
        if channel is None:
            return SUPPRESSED, None, held_by_cap or "unreachable", None
        # (2) suppression after an event (no promotional within 48 h of a support ticket)
        for suppression in self.suppressions:
            seen = customer.last_seen.get(suppression.after_event)
            if (
                category in suppression.categories
                and seen is not None
                and (seen <= now < seen + suppression.window)
            ):
                return SUPPRESSED, channel, suppression.reason, None
        # (3) quiet hours in the customer's time zone
        if (
            category != "transactional"
            and channel in self.quiet_channels
            and (category in self.quiet_categories)
        ):
            resume = self.quiet_until(customer, now)
            if resume is not None:
                return DEFERRED, channel, "quiet_hours", resume
        # (4) all-channel caps: promotional suppressed, lifecycle deferred until every full
        # window has room, unless that is too long after the step first came due
        if capped and channel not in self.uncapped_channels:
            full = [c for c in self.caps if c.scope == "all" and self.full(customer, c, now)]
            if full:
                if category == "promotional":
                    return SUPPRESSED, channel, full[0].reason, None
                room, cap = None, full[0]
                for rule in full:
                    at = self.room_at(customer, rule, now)
                    if at is None:
                        room, cap = None, rule
                        break
                    if room is None or at > room:
                        room, cap = at, rule
                if room is None or room - first_due > self.max_deferral:
                    return SUPPRESSED, channel, cap.reason, None
                return DEFERRED, channel, cap.reason, room
        return SENT, channel, None, None

    def usable(self, customer: Customer, channel: str, category: str) -> bool:
        """SPEC §3: the address is there and the customer has not opted out."""
        traits, out = customer.traits, customer.opted_out
        transactional = category == "transactional"

        def has(key: str) -> bool:
            value = traits.get(key)
            return isinstance(value, str) and value.strip() != ""

        if channel == "email":
            return has("email") and ("email" not in out or transactional)
        if channel == "sms":
            return has("phone") and "sms" not in out
        if channel == "whatsapp":
            return has("phone") and traits.get("whatsapp_opt_in") is True and "whatsapp" not in out
        if channel == "rcs":
            return (
                has("phone") and traits.get("rcs_capable") is True
                and "sms" not in out and "rcs" not in out
            )  # fmt: skip
        if channel == "push":
            return has("push_token") and ("push" not in out or transactional)
        return channel == "in_app"

    def in_window(self, customer: Customer, cap: Cap, now: datetime) -> list[datetime]:
        """Capped send times that count for `cap` at `now` (sent exactly a window ago: no)."""
        start = now - cap.window
        return [
            at
            for at, channel in customer.capped_sends
            if at > start and (cap.scope == "all" or channel == cap.scope)
        ]

    def full(self, customer: Customer, cap: Cap, now: datetime) -> bool:
        return len(self.in_window(customer, cap, now)) >= cap.limit

    def room_at(self, customer: Customer, cap: Cap, now: datetime) -> datetime | None:
        """The earliest time `cap`'s window has room again (None: never, a 0 limit)."""
        if cap.limit == 0:
            return None
        times = sorted(self.in_window(customer, cap, now))
        return times[len(times) - cap.limit] + cap.window

    def quiet_until(self, customer: Customer, now: datetime) -> datetime | None:
        """When quiet hours end, if `now` is inside them in the customer's zone."""
        quiet = self.quiet
        assert quiet is not None
        zone = self.zone(customer.traits.get("timezone"))
        local = now.astimezone(zone)
        clock = local.time()
        overnight = quiet.start > quiet.end
        if overnight:
            inside = clock >= quiet.start or clock < quiet.end
        else:
            inside = quiet.start <= clock < quiet.end
        if not inside:
            return None
        day = local.date()
        if overnight and clock >= quiet.start:
            day += timedelta(days=1)
        return datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)

    def zone(self, name: object) -> ZoneInfo:
        """The customer's IANA zone; UTC when missing or unknown."""
        key = name if isinstance(name, str) and name else "UTC"
        if key not in self.zones:
            try:
                self.zones[key] = ZoneInfo(key)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                self.zones[key] = ZoneInfo("UTC")
        return self.zones[key]

    # ---- the ledger, in the engine's total order ----

    def write(self, now: datetime, customer: str, line: dict[str, Any]) -> None:
        """Decisions come in time order; at one instant they are sorted by customer, each
        customer's in the order they were made."""
        if now != self.instant:
            assert self.instant is None or now > self.instant, "decisions out of time order"
            self.flush()
            self.instant = now
        self.pending.append((customer, orjson.dumps(line)))

    def flush(self) -> None:
        assert self.out is not None
        self.pending.sort(key=itemgetter(0))  # stable: keeps each customer's order
        self.out.writelines(line + b"\n" for _, line in self.pending)
        self.lines += len(self.pending)
        self.pending.clear()


def run_reference(
    log: Path,
    ledger: Path,
    *,
    config_dir: Path | None = None,
    until: datetime | None = None,
    keyword_is_engagement: bool = False,
) -> dict[str, int]:
    """Replay `log` with the reference loop; write `ledger`; return the counts."""
    config = load_config(config_dir or shipped_config_dir())
    loop = ReferenceLoop(config, keyword_is_engagement=keyword_is_engagement)
    return loop.run(log, ledger, until)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--until", default=None, help="stop the clock here (ISO 8601)")
    parser.add_argument(
        "--keyword-is-engagement",
        action="store_true",
        help="count a STOP/START reply as engagement (the engine before the 2026-11-30 amendment)",
    )
    args = parser.parse_args(argv)
    until = None if args.until is None else datetime.fromisoformat(args.until).astimezone(UTC)
    started = time.perf_counter()
    counts = run_reference(
        args.log, args.ledger, config_dir=args.config, until=until,
        keyword_is_engagement=args.keyword_is_engagement,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(" ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"{seconds:.2f} s, {counts['read'] / seconds:,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
