"""Properties of the whole engine over random event logs (SPEC §3, §4, §6).

Each example writes a random log of a few customers (random reachability, consent and
time zones, strictly increasing timestamps in distinct seconds) and replays it through
the real actor runtime with the shipped config. The invariants are checked on the
ledger file alone, against state this module rebuilds from the log itself — never
against the engine's own bookkeeping.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.engine.replay import ReplayOptions, run_replay

START = datetime(2026, 3, 1, tzinfo=UTC)  # NY and Berlin change clocks this month
ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Pacific/Auckland", "Europe/Berlin")
CHANNELS = ("email", "sms", "whatsapp", "rcs", "push", "in_app")
CAPPED = frozenset({"lifecycle", "promotional"})
QUIET_CHANNELS = frozenset({"sms", "whatsapp", "rcs", "push"})
STOP = ("STOP", " stop ", "Unsubscribe", "QUIT", "optout", "End", "STOPALL")
START_WORDS = ("START", " yes", "Unstop")
OTHER_BODIES = ("hello", "stop please", "where is my order?", "")
H = timedelta(hours=1)

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---- generating logs ----


@st.composite
def traits(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"timezone": draw(st.sampled_from(ZONES))}
    if draw(st.booleans()):
        out["email"] = "someone@example.com"
    if draw(st.booleans()):
        out["phone"] = "+14155550100"
        out["whatsapp_opt_in"] = draw(st.booleans())
        out["rcs_capable"] = draw(st.booleans())
    if draw(st.booleans()):
        out["push_token"] = "tok"
    preferred = draw(st.sampled_from((None, "email", "sms", "whatsapp", "push", "in_app")))
    if preferred is not None:
        out["preferred_channel"] = preferred
    return out


def body(draw: st.DrawFn) -> str:
    words: tuple[str, ...] = STOP + START_WORDS + OTHER_BODIES
    return draw(st.sampled_from(words))


@st.composite
def event(draw: st.DrawFn, customer: str) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            (
                "identify",
                "Signed Up",
                "Logged In",
                "Activated",
                "Product Viewed",
                "Order Completed",
                "Price Dropped",
                "Price Dropped",
                "Price Dropped",
                "Product Viewed",
                "Signed Up",
                "Fraud Suspected",
                "Support Ticket Opened",
                "Unsubscribed",
                "Subscribed",
                "Inbound Message",
                "Message Opened",
                "Message Clicked",
                "Message Failed",
                "Message Failed",
            )
        )
    )
    if kind == "identify":
        changes = draw(
            st.sampled_from(
                (
                    {"timezone": draw(st.sampled_from(ZONES))},
                    {"whatsapp_opt_in": draw(st.booleans())},
                    {"phone": "+14155550199"},
                    {"email": "new@example.com"},
                    {"preferred_channel": draw(st.sampled_from(CHANNELS))},
                )
            )
        )
        return {"type": "identify", "userId": customer, "traits": changes}
    props: dict[str, Any] = {}
    if kind in ("Unsubscribed", "Subscribed"):
        props["channel"] = draw(st.sampled_from((*CHANNELS, "all")))
    elif kind == "Inbound Message":
        props["channel"] = draw(st.sampled_from(("sms", "whatsapp", "email", "push")))
        props["body"] = body(draw)
    elif kind.startswith("Message "):
        props["channel"] = draw(st.sampled_from(("email", "sms", "whatsapp", "push", "in_app")))
        if kind == "Message Failed" and draw(st.booleans()):
            props["journey"], props["step"] = draw(
                st.sampled_from(
                    (
                        ("onboarding", "welcome"),
                        ("onboarding", "nudge_day3"),
                        ("onboarding", "nudge_day7"),
                        ("price_drop", "alert"),
                        ("fraud_alert", "alert"),
                        ("order_confirmation", "receipt"),
                        ("product_recommendation", "recommend"),
                    )
                )
            )
    return {"type": "track", "userId": customer, "event": kind, "properties": props}


# gaps between consecutive events, in seconds: minutes to days, so caps, quiet hours and
# timers all come into play
GAPS = st.one_of(
    st.integers(1, 3600),
    st.integers(1, 3600),
    st.integers(3600, 12 * 3600),
    st.integers(12 * 3600, 3 * 24 * 3600),
)


@st.composite
def logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    customers = [f"p-{i}" for i in range(draw(st.integers(2, 4)))]
    at = START + timedelta(seconds=draw(st.integers(0, 86_400)))
    out: list[dict[str, Any]] = []
    for customer in customers:
        at += timedelta(seconds=draw(st.integers(1, 600)))
        out.append({"type": "identify", "userId": customer, "traits": draw(traits())})
        out[-1]["timestamp"] = at
    for _ in range(draw(st.integers(5, 40))):
        at += timedelta(seconds=draw(GAPS))
        ev = draw(event(draw(st.sampled_from(customers))))
        ev["timestamp"] = at
        out.append(ev)
    for n, ev in enumerate(out):
        ev["timestamp"] = ev["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")
        ev["messageId"] = f"m-{n}"
    return out


# ---- replaying ----


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="omniprop-") as name:
        yield Path(name)


def replay(log: list[dict[str, Any]], directory: Path, tag: str = "run", **options: Any) -> bytes:
    """Replay `log`; return the ledger file's bytes."""
    path = directory / "log.jsonl"
    if not path.exists():
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in log))
    ledger = directory / f"{tag}.ledger.jsonl"
    run_replay(
        ReplayOptions(
            log=path,
            db=directory / f"{tag}.db",
            ledger=ledger,
            report=directory / f"{tag}.report.json",
            **options,
        )
    )
    return ledger.read_bytes()


def parse(ledger: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in ledger.splitlines()]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ledger_of(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with workdir() as directory:
        return parse(replay(log, directory))


# ---- the customer state the log implies (SPEC §2, §3), rebuilt independently ----


@dataclass
class State:
    traits: dict[str, Any]
    out: set[str]

    def usable(self, channel: str, category: str) -> bool:
        t, out = self.traits, self.out
        transactional = category == "transactional"

        def has(key: str) -> bool:
            return isinstance(t.get(key), str) and bool(t[key])

        if channel == "email":
            return has("email") and ("email" not in out or transactional)
        if channel == "sms":
            return has("phone") and "sms" not in out
        if channel == "whatsapp":
            return has("phone") and t.get("whatsapp_opt_in") is True and "whatsapp" not in out
        if channel == "rcs":
            return has("phone") and t.get("rcs_capable") is True and "sms" not in out
        if channel == "push":
            return has("push_token") and ("push" not in out or transactional)
        return channel == "in_app"


def apply(state: State, ev: dict[str, Any]) -> None:
    if ev["type"] == "identify":
        state.traits.update(ev.get("traits", {}))
        return
    name, props = ev["event"], ev.get("properties", {})
    channel = props.get("channel")
    if name == "Unsubscribed":
        state.out |= {"email", "sms", "whatsapp", "rcs", "push"} if channel == "all" else {channel}
        state.out.discard("in_app")
    elif name == "Subscribed":
        if channel == "all":
            state.out.clear()
        else:
            state.out.discard(channel)
    elif name == "Inbound Message":
        word = props.get("body", "").strip().casefold()
        if word in {w.strip().casefold() for w in STOP}:
            state.out.add(channel)
        elif word in {w.strip().casefold() for w in START_WORDS}:
            state.out.discard(channel)


def states_at(log: list[dict[str, Any]]) -> Iterator[tuple[datetime, str, State]]:
    """Each customer's state after every event, in time order."""
    states: dict[str, State] = defaultdict(lambda: State({}, set()))
    for ev in log:
        state = states[ev["userId"]]
        apply(state, ev)
        yield when(ev["timestamp"]), ev["userId"], State(dict(state.traits), set(state.out))


def state_lookup(log: list[dict[str, Any]]) -> dict[str, list[tuple[datetime, State]]]:
    table: dict[str, list[tuple[datetime, State]]] = defaultdict(list)
    for at, customer, state in states_at(log):
        table[customer].append((at, state))
    return table


def state_at(table: dict[str, list[tuple[datetime, State]]], customer: str, at: datetime) -> State:
    """The customer's state after every event at or before `at` (events precede timers)."""
    current = State({}, set())
    for event_at, state in table[customer]:
        if event_at > at:
            break
        current = state
    return current


def sent_capped(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line["outcome"] == "sent" and line["category"] in CAPPED and line["channel"] != "in_app"
    ]


# ---- the properties ----


@PROPERTY
@given(logs())
def test_never_over_a_cap(log: list[dict[str, Any]]) -> None:
    capped = sent_capped(ledger_of(log))
    by_customer: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for line in capped:
        by_customer[line["customer"]].append((when(line["at"]), line["channel"]))
    limits = (
        ("all", timedelta(hours=24), 2),
        ("all", timedelta(days=7), 5),
        ("sms", timedelta(hours=24), 1),
        ("whatsapp", timedelta(hours=24), 1),
    )
    for customer, sends in by_customer.items():
        for at, _ in sends:
            for scope, window, limit in limits:
                counted = [
                    (t, ch)
                    for t, ch in sends
                    if at - window < t <= at and (scope == "all" or ch == scope)
                ]
                assert len(counted) <= limit, (
                    f"{customer} at {at}: {len(counted)} {scope} sends in {window}: {counted}"
                )


@PROPERTY
@given(logs())
def test_never_a_capped_send_in_quiet_hours(log: list[dict[str, Any]]) -> None:
    table = state_lookup(log)
    for line in sent_capped(ledger_of(log)):
        if line["channel"] not in QUIET_CHANNELS:
            continue
        at = when(line["at"])
        tz = state_at(table, line["customer"], at).traits.get("timezone") or "UTC"
        local = at.astimezone(ZoneInfo(tz)).time()
        assert time(8, 0) <= local < time(21, 0), f"{line} is at {local} in {tz}"


@PROPERTY
@given(logs())
def test_never_a_send_on_an_unusable_channel(log: list[dict[str, Any]]) -> None:
    table = state_lookup(log)
    for line in ledger_of(log):
        if line["outcome"] != "sent":
            continue
        state = state_at(table, line["customer"], when(line["at"]))
        assert state.usable(line["channel"], line["category"]), (
            f"{line} while opted out of {sorted(state.out)} with traits {state.traits}"
        )


@PROPERTY
@given(logs())
def test_every_send_request_ends_in_exactly_one_final_line(log: list[dict[str, Any]]) -> None:
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in ledger_of(log):
        by_message[line["message_id"]].append(line)
    for message_id, lines in by_message.items():
        outcomes = [line["outcome"] for line in lines]
        assert outcomes[-1] in {"sent", "suppressed", "failed"}, (message_id, outcomes)
        assert all(o == "deferred" for o in outcomes[:-1]), (message_id, outcomes)
        times = [when(line["at"]) for line in lines]
        assert times == sorted(times), (message_id, times)
        keys = {(line["customer"], line["journey"], line["step"]) for line in lines}
        assert len(keys) == 1, (message_id, keys)


@PROPERTY
@given(logs())
def test_ledger_is_time_ordered_and_the_same_every_run(log: list[dict[str, Any]]) -> None:
    with workdir() as directory:
        first = replay(log, directory, "a")
        second = replay(log, directory, "b")
    assert first == second
    keys = [(when(line["at"]), line["customer"]) for line in parse(first)]
    assert keys == sorted(keys)


@PROPERTY
@given(logs())
def test_ledger_does_not_depend_on_shards_or_passivation(log: list[dict[str, Any]]) -> None:
    with workdir() as directory:
        default = replay(log, directory, "default")
        one_shard = replay(log, directory, "one", shards=1)
        passivating = replay(
            log,
            directory,
            "passivating",
            shards=3,
            max_active=1,
            batch_events=1,
            checkpoint_events=1,
        )
    assert one_shard == default
    assert passivating == default
