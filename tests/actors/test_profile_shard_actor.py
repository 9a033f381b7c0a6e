"""The ProfileShardActor alone, with the shipped journeys.

A stand-in governor records each `DecideBatch` and answers with the pure `decide`; the
store writer is a recorder, or the real StoreWriterActor on a SQLite file where a
customer must come back from the store.

What a customer would notice: the messages their events and timers ask for, at the
right time, and a profile that survives being dropped from memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pykka
import pytest
from actor_support import (
    CONFIG,
    WAIT,
    AnswerHeld,
    DecidingGovernorActor,
    HoldDecisions,
    Inbox,
    recorder,
    requests_of,
    table,
)

from omniconsole.actors import profile_shard
from omniconsole.actors.messages import (
    ApplyBatch,
    Checkpoint,
    DecideBatch,
    Decided,
    FlushState,
    NextDue,
    Passivate,
    PreloadTimers,
    Rows,
)
from omniconsole.actors.profile_shard import ProfileShardActor
from omniconsole.actors.store_writer import StoreWriterActor
from omniconsole.adapters.store.sqlite import SqliteStore
from omniconsole.domain.channels import Channel
from omniconsole.domain.events import Event
from omniconsole.domain.flow import TimedEvent
from omniconsole.domain.profile import Profile
from omniconsole.domain.records import InstanceRecord, ProfileRecord

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
S = timedelta(seconds=1)
H = timedelta(hours=1)
DAY3 = T + timedelta(hours=72)  # onboarding's nudge_day3 comes due


def signs_up(customer: str, at: datetime = T) -> list[Event]:
    return [
        Event("identify", customer, at, traits={"email": f"{customer}@example.com"}),
        Event("track", customer, at, "Signed Up"),
    ]


def logs_in(customer: str, at: datetime) -> list[Event]:
    return [Event("track", customer, at, "Logged In")]


@dataclass
class ShardWorld:
    """A started shard, its stand-in governor and its writer."""

    shard: pykka.ActorRef[Any]
    governor: pykka.ActorRef[Any]
    asked: Inbox  # every DecideBatch the governor received
    writer: pykka.ActorRef[Any]
    batches: int = 0

    def apply(self, events: Sequence[Event], horizon: datetime | None) -> Future[int]:
        """Hand the shard a batch as the engine does; its future says when it is done."""
        self.batches += 1
        done: Future[int] = Future()
        timed = [TimedEvent(e.at, e) for e in events]
        self.shard.tell(ApplyBatch(self.batches, timed, horizon, done))
        return done

    def run(self, events: Sequence[Event], horizon: datetime | None) -> int:
        return self.apply(events, horizon).result(timeout=WAIT)

    def steps(self) -> list[tuple[str, str, datetime]]:
        """(customer, step, when) of every send the shard asked for, in order."""
        return [(r.customer, r.step, r.now) for r in requests_of(self.asked)]


def start_world(
    writer: pykka.ActorRef[Any], store: SqliteStore, *, store_backed: bool = False
) -> ShardWorld:
    asked = Inbox()
    governor = DecidingGovernorActor.start(asked)
    shard = ProfileShardActor.start(CONFIG, governor, writer, store, store_backed=store_backed)
    return ShardWorld(shard, governor, asked, writer)


@pytest.fixture
def rows() -> tuple[pykka.ActorRef[Any], Inbox]:
    return recorder()


@pytest.fixture
def world(rows: tuple[pykka.ActorRef[Any], Inbox], tmp_path: Path) -> ShardWorld:
    """A shard whose writer is a recorder (its store is never read: no passivation)."""
    return start_world(rows[0], SqliteStore(tmp_path / "unused.db"))


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.db")


@pytest.fixture
def store_writer(store: SqliteStore) -> pykka.ActorRef[Any]:
    return StoreWriterActor.start(store, fresh=True)


@pytest.fixture
def stored_world(store_writer: pykka.ActorRef[Any], store: SqliteStore) -> ShardWorld:
    """A shard writing through the real store writer to a SQLite file."""
    return start_world(store_writer, store)


def commit(world: ShardWorld) -> None:
    """A checkpoint as the engine takes one: flush the shard, commit the store."""
    world.shard.ask(FlushState(T), timeout=WAIT)
    world.writer.ask(Checkpoint({}), timeout=WAIT)


# ---- events and timers -----------------------------------------------------------------


def test_a_sign_up_asks_the_governor_for_the_welcome_and_the_batch_counts_its_events(
    world: ShardWorld,
) -> None:
    assert world.run([*signs_up("c-1"), *signs_up("c-2")], T + S) == 4
    assert world.steps() == [("c-1", "welcome", T), ("c-2", "welcome", T)]
    [request, _] = requests_of(world.asked)
    assert (request.journey, request.channels) == ("onboarding", (Channel.EMAIL, Channel.IN_APP))
    assert Channel.EMAIL in request.usable  # the identify before it gave the address


def test_a_timer_fires_in_the_first_batch_whose_horizon_is_past_its_due_time(
    world: ShardWorld,
) -> None:
    world.run(signs_up("c-1"), T + S)
    world.run([], DAY3 - H)
    world.run([], DAY3)  # the horizon is exclusive: not yet
    assert [step for _, step, _ in world.steps()] == ["welcome"]
    world.run([], DAY3 + S)
    assert world.steps()[1:] == [("c-1", "nudge_day3", DAY3)]


def test_a_batch_with_no_horizon_fires_every_pending_timer(world: ShardWorld) -> None:
    world.run(signs_up("c-1"), None)
    assert [step for _, step, _ in world.steps()] == ["welcome", "nudge_day3", "nudge_day7"]


def test_next_due_answers_the_earliest_timer_on_the_shard(world: ShardWorld) -> None:
    assert world.shard.ask(NextDue(), timeout=WAIT) is None
    world.run([*signs_up("c-2", T + H), *signs_up("c-1")], T + H + S)
    assert world.shard.ask(NextDue(), timeout=WAIT) == DAY3
    world.run([], DAY3 + S)  # c-1's nudge fires; c-2's is next
    assert world.shard.ask(NextDue(), timeout=WAIT) == DAY3 + H


def test_timers_preloaded_after_a_restart_are_what_next_due_answers(world: ShardWorld) -> None:
    world.shard.tell(PreloadTimers([("c-1", DAY3), ("c-2", T + H)]))
    assert world.shard.ask(NextDue(), timeout=WAIT) == T + H


# ---- flushing state --------------------------------------------------------------------


def test_a_flush_writes_each_changed_profile_and_journey_instance_and_answers_the_count(
    world: ShardWorld, rows: tuple[pykka.ActorRef[Any], Inbox]
) -> None:
    writer, inbox = rows
    world.run([*signs_up("c-1"), *signs_up("c-2")], T + S)
    assert world.shard.ask(FlushState(T + S), timeout=WAIT) == 2
    writer.ask(Checkpoint({}), timeout=WAIT)  # a recorder: only a barrier here
    profiles = sorted(inbox.records(ProfileRecord))
    assert [(p.customer, p.email, p.updated_at, p.next_due) for p in profiles] == [
        ("c-1", "c-1@example.com", "2026-03-02T10:00:01Z", "2026-03-05T10:00:00Z"),
        ("c-2", "c-2@example.com", "2026-03-02T10:00:01Z", "2026-03-05T10:00:00Z"),
    ]
    assert Profile.loads(profiles[0].state).traits == {"email": "c-1@example.com"}
    instances = sorted(inbox.records(InstanceRecord))
    assert [(i.customer, i.journey, i.status, i.next_step) for i in instances] == [
        ("c-1", "onboarding", "active", "nudge_day3"),
        ("c-2", "onboarding", "active", "nudge_day3"),
    ]


def test_a_second_flush_with_nothing_changed_writes_no_profile(
    world: ShardWorld, rows: tuple[pykka.ActorRef[Any], Inbox]
) -> None:
    writer, inbox = rows
    world.run(signs_up("c-1"), T + S)
    world.shard.ask(FlushState(T), timeout=WAIT)
    assert world.shard.ask(FlushState(T), timeout=WAIT) == 0
    writer.ask(Checkpoint({}), timeout=WAIT)
    assert [p.customer for p in inbox.records(ProfileRecord)] == ["c-1"]


class PacedWriter:
    """Stands in for the store writer's ref: keeps every chunk it is given and, as each
    comes, how many given chunks the shard has not yet waited for (`tell`s never are)."""

    def __init__(self) -> None:
        self.given = 0
        self.taken = 0
        self.outstanding: list[int] = []
        self.records: list[Any] = []

    def _give(self, message: Rows) -> None:
        self.records.extend(message.records)
        self.given += 1
        self.outstanding.append(self.given - self.taken)

    def tell(self, message: Rows) -> None:
        self._give(message)

    def ask(self, message: Rows, block: bool = True, timeout: float | None = None) -> Any:
        self._give(message)
        future = _Waited(self)
        future.set(None)  # "taken": the shard sees the writer's answer when it waits
        return future if not block else None


class _Waited(pykka.ThreadingFuture[Any]):
    def __init__(self, writer: PacedWriter) -> None:
        super().__init__()
        self.writer = writer

    def get(self, timeout: float | None = None) -> Any:
        self.writer.taken += 1
        return super().get(timeout=timeout)


def test_a_flush_keeps_at_most_a_window_of_chunks_waiting_for_the_writer(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every changed profile of the interval used to queue in the writer's mailbox at
    # once, as text: the top of a partition's memory at each checkpoint.
    monkeypatch.setattr(profile_shard, "FLUSH_CHUNK", 2)
    writer = PacedWriter()
    world = start_world(cast("pykka.ActorRef[Any]", writer), store)
    world.shard.tell(Passivate(3))  # 3 stay whole in memory, 9 wait on disk
    customers = [f"c-{i:02}" for i in range(12)]
    world.run([e for c in customers for e in signs_up(c)], T + S)
    assert world.shard.ask(FlushState(T + S), timeout=WAIT) == 12
    stored = sorted(r.customer for r in writer.records if isinstance(r, ProfileRecord))
    assert stored == customers
    instances = [r for r in writer.records if isinstance(r, InstanceRecord)]
    assert sorted(i.customer for i in instances) == customers
    assert writer.given >= 7  # 6 chunks of profiles, then the instance rows
    assert max(writer.outstanding) <= profile_shard.FLUSH_WINDOW + 1


# ---- passivation (virtual profile actors) ----------------------------------------------


def test_a_passivated_customer_comes_back_from_the_store_with_its_journey(
    stored_world: ShardWorld,
) -> None:
    world = stored_world
    world.run(signs_up("c-1"), T + S)
    commit(world)
    world.shard.tell(Passivate(0))
    world.run(logs_in("c-1", T + H), T + H + S)
    # first_login is a step of the onboarding instance the stored profile holds
    assert [step for _, step, _ in world.steps()] == ["welcome", "first_login"]


def test_passivation_drops_the_least_recently_used_clean_profiles_beyond_the_budget(
    stored_world: ShardWorld,
) -> None:
    world = stored_world
    world.run([*signs_up("c-1"), *signs_up("c-2")], T + S)  # c-1 used first
    commit(world)
    world.shard.tell(Passivate(1))
    # Rewrite both stored profiles as strangers behind the shard's back: a customer read
    # back from the store is then told apart from one the shard kept in memory.
    strangers = [ProfileRecord(c, None, None, "2026-03-02T10:00:00Z", None,
                               Profile(c).dumps().decode()) for c in ("c-1", "c-2")]  # fmt: skip
    world.writer.tell(Rows(strangers))
    world.writer.ask(Checkpoint({}), timeout=WAIT)
    world.run([*logs_in("c-1", T + H), *logs_in("c-2", T + H)], T + H + S)
    assert [(c, step) for c, step, _ in world.steps()[2:]] == [("c-2", "first_login")]


def test_a_profile_changed_since_the_last_flush_is_never_passivated(
    stored_world: ShardWorld,
) -> None:
    world = stored_world
    world.run(signs_up("c-1"), T + S)  # not flushed: the store does not have it yet
    world.shard.tell(Passivate(0))
    world.run(logs_in("c-1", T + H), T + H + S)
    assert [step for _, step, _ in world.steps()] == ["welcome", "first_login"]


def test_changed_profiles_beyond_the_budget_leave_memory_as_bytes_and_reach_the_store(
    stored_world: ShardWorld, store: SqliteStore
) -> None:
    world = stored_world
    world.shard.tell(Passivate(1))
    world.run([*signs_up("c-1"), *signs_up("c-2"), *signs_up("c-3")], T + S)
    # none is stored yet: one stays whole in memory, two wait as their stored bytes...
    shard = world.shard.proxy()
    assert list(shard.active.get(timeout=WAIT)) == ["c-3"]
    assert sorted(shard.evicted.get(timeout=WAIT)) == ["c-1", "c-2"]
    # ...and come back whole when needed
    world.run(logs_in("c-1", T + H), T + H + S)
    commit(world)
    stored = table(store.path, "SELECT customer, state FROM profiles ORDER BY customer")
    assert [c for c, _ in stored] == ["c-1", "c-2", "c-3"]
    assert {m.step for m in Profile.loads(stored[0][1]).sent} == {"welcome", "first_login"}
    [(status, next_step)] = table(
        store.path,
        "SELECT status, next_step FROM journey_instances WHERE customer = 'c-3'",
    )
    assert (status, next_step) == ("active", "nudge_day3")
    world.run([*logs_in("c-2", T + 2 * H), *logs_in("c-3", T + 2 * H)], T + 2 * H + S)
    assert sorted(c for c, step, _ in world.steps() if step == "first_login") == [
        "c-1",
        "c-2",
        "c-3",
    ]


@pytest.mark.parametrize(("budget", "whole"), [(False, 4), (True, 8)])
def test_a_share_is_a_hard_cap_or_under_a_budget_a_floor(
    stored_world: ShardWorld, budget: bool, whole: int
) -> None:
    # under a budget, 20 customers known and a share of 4: 4 * 5 // 2 - 20 // 10 = 8
    world = stored_world
    world.shard.tell(Passivate(4, budget))
    customers = [f"c-{i:02}" for i in range(20)]
    world.run([e for c in customers for e in signs_up(c)], T + S)
    shard = world.shard.proxy()
    active = list(shard.active.get(timeout=WAIT))
    assert active == customers[-whole:]  # the most recently used stay whole
    assert sorted(shard.evicted.get(timeout=WAIT)) == customers[:-whole]


def test_a_profile_waiting_for_the_governor_is_not_passivated_under_it(
    stored_world: ShardWorld, store: SqliteStore
) -> None:
    world = stored_world
    world.run(signs_up("c-1"), T + S)
    commit(world)  # c-1 is clean...
    world.governor.tell(HoldDecisions())
    done = world.apply(logs_in("c-1", T + H), T + H + S)
    world.asked.wait_for(DecideBatch, count=2)  # ...and waits for its first_login decision
    world.shard.tell(Passivate(0))
    world.governor.tell(AnswerHeld())
    assert done.result(timeout=WAIT) == 1
    commit(world)
    [(state,)] = table(store.path, "SELECT state FROM profiles WHERE customer = 'c-1'")
    # the first_login send is remembered: a later `Message Failed` can still find it
    assert "first_login" in {m.step for m in Profile.loads(state).sent}


# ---- failures are reported, not swallowed ----------------------------------------------


def test_a_corrupt_stored_profile_quarantines_that_customer_and_the_shard_goes_on(
    store_writer: pykka.ActorRef[Any], store: SqliteStore
) -> None:
    corrupt = ProfileRecord("c-bad", None, None, "2026-03-02T10:00:00Z", None, "{not json")
    store_writer.tell(Rows([corrupt]))
    store_writer.ask(Checkpoint({}), timeout=WAIT)
    world = start_world(store_writer, store, store_backed=True)  # a resumed run
    assert world.run(logs_in("c-bad", T), T + S) == 1  # the batch completes
    assert world.run(signs_up("c-good"), T + S) == 2
    assert world.steps() == [("c-good", "welcome", T)]
    store_writer.ask(Checkpoint({}), timeout=WAIT)
    [(customer, reason)] = table(store.path, "SELECT customer, reason FROM quarantine")
    assert customer == "c-bad" and reason.startswith("ProfileDecodeError: JSON is malformed")
    [(why,)] = table(store.path, "SELECT reason FROM rejects")
    assert "quarantined" in why


class MiscountingGovernorActor(pykka.ThreadingActor):
    """A governor with a bug: it answers every batch with no decisions."""

    def on_receive(self, message: Any) -> Any:
        """Runs on its own thread."""
        if isinstance(message, DecideBatch):
            message.reply_to.tell(Decided(message.token, []))


def test_decisions_that_do_not_match_the_requests_fail_the_batch_not_the_shard(
    rows: tuple[pykka.ActorRef[Any], Inbox], tmp_path: Path
) -> None:
    governor = MiscountingGovernorActor.start()
    shard = ProfileShardActor.start(
        CONFIG, governor, rows[0], SqliteStore(tmp_path / "unused.db"), store_backed=False
    )
    done: Future[int] = Future()
    events = [TimedEvent(e.at, e) for e in signs_up("c-1")]
    shard.tell(ApplyBatch(1, events, T + S, done))
    with pytest.raises(ValueError, match="zip"):
        done.result(timeout=WAIT)
    assert shard.ask(NextDue(), timeout=WAIT) is None  # alive, and still answering


def test_an_unknown_message_is_refused_with_a_type_error(world: ShardWorld) -> None:
    with pytest.raises(TypeError, match="unexpected message"):
        world.shard.ask("hello", timeout=WAIT)
