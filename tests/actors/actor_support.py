"""Stand-ins and builders for testing each actor alone (pykka's own recipe).

A collaborator is either the real actor or a tiny *recording* actor that keeps every
message it receives in an `Inbox`. Tests wait on the inbox's condition (or on a
future), never sleep. A recorder answers any ask with True, so `ref.ask(Sync())` is a
barrier: everything told to it before has been recorded.

Named `actor_support` (not `conftest`) so that it cannot shadow another test folder's
helpers: pytest puts each test folder on `sys.path` under the module's own name.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pykka

from omniconsole.actors.messages import DecideBatch, Decided, Rows, Sync
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import EngineConfig, Policy, load_config, shipped_config_dir
from omniconsole.domain.governor import SEND, CapUsage, SendRequest, decide, is_capped

T = TypeVar("T")

#: how long a test waits for an actor before it fails (never reached when all is well)
WAIT = 10.0

CONFIG: EngineConfig = load_config(shipped_config_dir())
POLICY: Policy = CONFIG.policy


class Inbox:
    """Every message one recorder received, in order. Thread-safe; wait on it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._messages: list[Any] = []

    def put(self, message: Any) -> None:
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()

    def all(self) -> list[Any]:
        """The messages so far."""
        with self._changed:
            return list(self._messages)

    def of(self, kind: type[T]) -> list[T]:
        """The messages of type `kind` so far."""
        return [m for m in self.all() if isinstance(m, kind)]

    def records(self, kind: type[T]) -> list[T]:
        """The store records of type `kind` in every `Rows` so far, in order."""
        return [r for rows in self.of(Rows) for r in rows.records if isinstance(r, kind)]

    def wait_until(self, what: str, ready: Callable[[Inbox], bool], timeout: float = WAIT) -> None:
        """Block until `ready(self)` holds; fail the test with `what` when it never does."""
        with self._changed:
            if not self._changed.wait_for(lambda: ready(self), timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self._messages!r}")

    def wait_for(self, kind: type[T], count: int = 1) -> list[T]:
        """Block until `count` messages of type `kind` arrived; return all of that type."""
        self.wait_until(f"{count} {kind.__name__}", lambda box: len(box.of(kind)) >= count)
        return self.of(kind)

    def wait_for_records(
        self, kind: type[T], where: Callable[[T], bool] = lambda _: True, count: int = 1
    ) -> list[T]:
        """Block until `count` records of `kind` matching `where` arrived; return those."""
        self.wait_until(
            f"{count} {kind.__name__} records",
            lambda box: sum(1 for r in box.records(kind) if where(r)) >= count,
        )
        return [r for r in self.records(kind) if where(r)]


class RecorderActor(pykka.ThreadingActor):
    """Stands in for any collaborator: records every message but `Sync`. Runs on its own thread."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> Any:
        """Runs on the recorder thread: keep the message (a `Sync` is only a barrier);
        answer asks with True."""
        if not isinstance(message, Sync):
            self.inbox.put(message)
        return True


def recorder() -> tuple[pykka.ActorRef[Any], Inbox]:
    """A started recorder and its inbox."""
    inbox = Inbox()
    return RecorderActor.start(inbox), inbox


class HoldDecisions:
    """Tell a `DecidingGovernorActor` to keep the next batches unanswered."""


class AnswerHeld:
    """Tell a `DecidingGovernorActor` to answer the batches it held back, and stop holding."""


class DecidingGovernorActor(pykka.ThreadingActor):
    """Stands in for the fatigue governor in front of a profile shard: records each
    `DecideBatch` and answers it with the pure `decide`, counting capped sends per
    customer as the real governor does (minus dispatch and the ledger).

    After `HoldDecisions` it keeps batches unanswered until `AnswerHeld`: a shard caught
    in the middle of a batch.
    """

    def __init__(self, inbox: Inbox, *, policy: Policy = POLICY) -> None:
        super().__init__()
        self.inbox = inbox
        self.policy = policy
        self.hold = False
        self.held: list[DecideBatch] = []
        self.usage: dict[str, CapUsage] = {}

    def on_receive(self, message: Any) -> Any:
        """Runs on the stand-in's thread."""
        if isinstance(message, DecideBatch):
            self.inbox.put(message)
            if self.hold:
                self.held.append(message)
            else:
                self._answer(message)
        elif isinstance(message, HoldDecisions):
            self.hold = True
        elif isinstance(message, AnswerHeld):
            held, self.held, self.hold = self.held, [], False
            for batch in held:
                self._answer(batch)
        return True

    def _answer(self, batch: DecideBatch) -> None:
        decisions = []
        for req in batch.requests:
            usage = self.usage.setdefault(req.customer, CapUsage())
            decision = decide(req, self.policy, usage)
            channel = decision.channel
            if (
                decision.outcome == SEND
                and channel
                and is_capped(self.policy, req.category, channel)
            ):
                usage.record(req.now, str(channel))
            decisions.append(decision)
        batch.reply_to.tell(Decided(batch.token, decisions))


def requests_of(inbox: Inbox) -> list[SendRequest]:
    """Every send request a stand-in governor was asked to decide, in order."""
    return [req for batch in inbox.of(DecideBatch) for req in batch.requests]


def send_request(
    customer: str = "c-1",
    *,
    now: datetime,
    step: str = "s",
    seq: int = 1,
    journey: str = "j",
    category: Category = Category.LIFECYCLE,
    channels: Iterable[Channel] = (Channel.SMS,),
    usable: Iterable[Channel] | None = None,
    timezone: str = "UTC",
) -> SendRequest:
    """One request as a profile would send it; every listed channel usable by default."""
    listed = tuple(channels)
    return SendRequest(
        customer=customer,
        seq=seq,
        message_id=f"{customer}:{journey}:1:{step}:{seq}",
        journey=journey,
        instance=1,
        step=step,
        category=category,
        channels=listed,
        usable=frozenset(listed if usable is None else usable),
        preferred=None,
        timezone=timezone,
        now=now,
        first_due=now,
        event_times={},
        engagement=None,
    )


def table(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the committed store, read as any console would (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()
