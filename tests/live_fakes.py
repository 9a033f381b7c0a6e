"""Fakes shared by the live outbox tests on SQLite (`actors/test_live_outbox.py`) and on
PostgreSQL (`postgres/test_pg_live.py`): providers that signal every call, so tests wait
on a condition rather than sleep, and a clock that moves with real time and can jump.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from omniconsole.adapters.channels.fake import FakeChannelAdapter, ReconcilingFakeAdapter
from omniconsole.adapters.channels.settings import DeliverySettings
from omniconsole.domain.events import Event
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Watched:
    """Mixin: signal a condition after every send, so tests wait on it (no sleeps)."""

    changed: threading.Condition

    def watch(self) -> None:
        self.changed = threading.Condition()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            return await super().send(message)  # type: ignore[misc,no-any-return]
        finally:
            with self.changed:
                self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), what


class Provider(Watched, FakeChannelAdapter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watch()


class AskableProvider(Watched, ReconcilingFakeAdapter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watch()

    async def reconcile(self, message: OutboundMessage, since: datetime) -> DeliveryResult | None:
        try:
            return await super().reconcile(message, since)
        finally:
            with self.changed:
                self.changed.notify_all()


class MovableClock:
    """Real time from NOW on (retries come due); a test may jump it forward."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.jump = timedelta(0)

    def now(self) -> datetime:
        return NOW + self.jump + timedelta(seconds=time.monotonic() - self.start)


QUICK = DeliverySettings(retry_base=0.02, retry_max=0.05, reconcile_after=0.02)


def order(customer: str, n: int, **traits: Any) -> list[Event]:
    return [
        Event("identify", customer, NOW, traits=traits, message_id=f"{customer}-id"),
        Event("track", customer, NOW, "Order Completed", properties={"order_id": f"A{n}"},
              message_id=f"{customer}-order-{n}"),
    ]  # fmt: skip
