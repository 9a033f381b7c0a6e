"""ActorEngine as a unit: the `Engine` a driver talks to, on a SQLite file, with the
shipped config. The driver here is the test itself, calling add/apply/drain/checkpoint
the way a replay does.

What an operator would notice: the ledger and events appear checkpoint by checkpoint,
a restarted engine carries on where the last checkpoint left each customer, and a
customer whose events fail is quarantined instead of stopping the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from actor_support import CONFIG, table

from omniconsole.actors.runtime import ActorEngine
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.events import Event
from omniconsole.domain.records import ProfileRecord
from omniconsole.domain.timeutil import format_timestamp
from omniconsole.engine.protocol import Cut

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
S = timedelta(seconds=1)
H = timedelta(hours=1)

Start = Callable[..., ActorEngine]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "engine.db"


@pytest.fixture
def start(db: Path) -> Iterator[Start]:
    """Start an engine on the test's store (`resume=` as the driver would pass it)."""
    started: list[ActorEngine] = []

    def start(*, resume: bool) -> ActorEngine:
        engine = ActorEngine(CONFIG, SqliteStore(db), resume=resume, shards=2)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()  # what a test did not commit is rolled back; stopping twice is harmless


class Driver:
    """Feeds an engine as a replay does: numbered lines, then apply up to a horizon."""

    def __init__(self, engine: ActorEngine, first_line: int = 1) -> None:
        self.engine = engine
        self.line = first_line - 1

    def feed(self, events: Sequence[Event], horizon: datetime | None) -> None:
        for event in events:
            self.line += 1
            self.engine.add(self.line, event, event.at, False, orjson.dumps(event.to_json()))
        self.engine.apply(horizon)

    def checkpoint(self, now: datetime) -> None:
        meta = {"checkpoint_line": str(self.line), "clock": format_timestamp(now)}
        self.engine.checkpoint(Cut(meta, now, max_active=1000))


def signs_up(customer: str, at: datetime, **traits: object) -> list[Event]:
    return [
        Event("identify", customer, at, traits={"email": f"{customer}@example.com", **traits}),
        Event("track", customer, at, "Signed Up"),
    ]


def ledger(db: Path) -> list[tuple[str, str, str | None, str, str | None, str]]:
    """(customer, step, channel, outcome, reason, at) in the ledger's total order."""
    return [
        (r[0], r[1], r[2], r[3], r[4], r[5])
        for r in table(db, "SELECT customer, step, channel, outcome, reason, at FROM ledger"
                           " ORDER BY ts, customer, seq")
    ]  # fmt: skip


def count(db: Path, name: str) -> int:
    return int(table(db, f"SELECT count(*) FROM {name}")[0][0])


def test_what_an_engine_applies_reaches_the_store_at_its_checkpoint(start: Start, db: Path) -> None:
    engine = start(resume=False)
    driver = Driver(engine)
    driver.feed([*signs_up("c-1", T), *signs_up("c-2", T), *signs_up("c-3", T)], T + S)
    engine.drain()
    assert "checkpoint_line" not in engine.meta()  # the store is open; nothing committed
    assert (ledger(db), count(db, "events")) == ([], 0)
    driver.checkpoint(T + S)
    assert ledger(db) == [
        (c, "welcome", "email", "sent", None, "2026-03-02T10:00:00Z") for c in ("c-1", "c-2", "c-3")
    ]
    assert count(db, "events") == 6
    assert count(db, "profiles") == 3
    assert (engine.meta()["checkpoint_line"], engine.meta()["clock"]) == (
        "6", "2026-03-02T10:00:01Z",
    )  # fmt: skip


def test_next_due_is_the_earliest_timer_on_any_shard(start: Start) -> None:
    engine = start(resume=False)
    assert engine.next_due() is None
    customers = ["c-1", "c-2", "c-3", "c-4"]
    assert len({engine.shard_of(c) for c in customers}) == 2  # both shards hold timers
    events = [e for n, c in enumerate(customers) for e in signs_up(c, T + n * H)]
    Driver(engine).feed(events, T + 4 * H)
    engine.drain()
    assert engine.next_due() == T + timedelta(hours=72)  # c-1's nudge_day3


def test_stopping_keeps_only_what_the_last_checkpoint_committed(start: Start, db: Path) -> None:
    engine = start(resume=False)
    driver = Driver(engine)
    driver.feed(signs_up("c-1", T), T + S)
    driver.checkpoint(T + S)
    driver.feed(signs_up("c-2", T + H), T + H + S)
    engine.drain()
    engine.stop()
    assert [line[0] for line in ledger(db)] == ["c-1"]
    assert count(db, "events") == 2
    assert dict(table(db, "SELECT key, value FROM meta"))["checkpoint_line"] == "2"


def test_a_customer_deferred_by_quiet_hours_before_a_restart_gets_the_send_after_it(
    start: Start, db: Path
) -> None:
    late = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # a Monday evening, UTC
    day3 = late + timedelta(hours=72)  # Thursday 22:30: quiet hours for SMS
    morning = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)  # Friday 08:00: quiet hours end
    first = start(resume=False)
    driver = Driver(first)
    driver.feed(signs_up("c-1", late, phone="+15555550100"), late + S)
    driver.feed([], day3 + S)
    driver.checkpoint(day3 + S)
    first.stop()
    assert ledger(db)[1:] == [
        ("c-1", "nudge_day3", "sms", "deferred", "quiet_hours", "2026-03-05T22:30:00Z")
    ]

    second = start(resume=True)
    assert second.next_due() == morning  # the deferred send's timer came back
    resumed = Driver(second, first_line=driver.line + 1)
    resumed.feed([], morning + S)
    resumed.checkpoint(morning + S)
    assert ledger(db)[2:] == [("c-1", "nudge_day3", "sms", "sent", None, "2026-03-06T08:00:00Z")]


def test_cap_usage_from_before_a_restart_still_counts_after_it(start: Start, db: Path) -> None:
    def price_drop(at: datetime) -> Event:
        return Event("track", "c-1", at, "Price Dropped")

    identify = Event("identify", "c-1", T, traits={"email": "c-1@example.com"})
    first = start(resume=False)
    driver = Driver(first)
    driver.feed([identify, price_drop(T), price_drop(T + H)], T + H + S)
    driver.checkpoint(T + H + S)
    first.stop()
    assert [(x[2], x[3]) for x in ledger(db)] == [("email", "sent"), ("email", "sent")]

    second = start(resume=True)
    resumed = Driver(second, first_line=driver.line + 1)
    resumed.feed([price_drop(T + 2 * H)], T + 2 * H + S)
    resumed.checkpoint(T + 2 * H + S)
    # two capped sends in 24 hours: the all-channel cap is full; promotional is dropped
    assert ledger(db)[2][1:5] == ("alert", "email", "suppressed", "cap:all:24h")


def test_a_customer_the_engine_cannot_apply_is_quarantined_and_the_driver_goes_on(
    start: Start, db: Path
) -> None:
    """A corrupt stored profile: that customer is stopped and recorded, not the engine —
    and after a restart it stays stopped while the others are served."""
    first = start(resume=False)
    first.write([ProfileRecord("c-bad", None, None, "2026-03-02T10:00:00Z", None, "{not json")])
    Driver(first).checkpoint(T)
    first.stop()
    second = start(resume=True)
    driver = Driver(second)
    driver.feed([Event("track", "c-bad", T, "Logged In"), *signs_up("c-good", T)], T + S)
    second.drain()  # does not raise
    driver.checkpoint(T + S)
    [(customer, reason)] = table(db, "SELECT customer, reason FROM quarantine")
    assert customer == "c-bad" and reason.startswith("ProfileDecodeError: JSON is malformed")
    assert [row[:2] for row in ledger(db)] == [("c-good", "welcome")]
    second.stop()
    third = start(resume=True)
    Driver(third, first_line=10).feed([Event("track", "c-bad", T + H, "Signed Up")], T + H + S)
    third.drain()
    assert [row[:2] for row in ledger(db)] == [("c-good", "welcome")]
