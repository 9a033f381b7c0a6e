"""An in-memory, scriptable channel adapter for fast runtime tests.

Script what the next sends see, globally or per customer::

    fake = FakeChannelAdapter()
    fake.script(transient(2), ok())                  # next send: 2 transient errors, then ok
    fake.script(opted_out(), customer="c-1")         # c-1's next send: opted out
    fake.script(permanent("21211"))
    fake.script(ambiguous(landed=True))              # the answer is lost; the provider has it

Each scripted `Step` is consumed by one `send`. Retries happen inside `send` exactly
as in the real adapters (same `DeliveryGuard`, but sleeping for no time), so
`transient(n)` with `n < attempts` ends in success and `attempts` shows every try.
`received` is what the provider got (a lost answer included); `ReconcilingFakeAdapter`
can be asked about it afterwards, as Twilio's Messages list is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from omniconsole.adapters.channels.resilience import (
    CircuitBreaker,
    DeliveryGuard,
    HealthState,
    LimiterFactory,
    RetryPolicy,
    TokenBucket,
    pace_guards,
)
from omniconsole.domain.channels import ALL_CHANNELS, Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

__all__ = [
    "FakeChannelAdapter",
    "ReconcilingFakeAdapter",
    "Step",
    "ambiguous",
    "ok",
    "opted_out",
    "permanent",
    "transient",
]


@dataclass(frozen=True, slots=True)
class Step:
    """What one `send` will experience: `transient_failures` errors, then `final`;
    `landed`: the provider got the message (even when its answer was lost)."""

    final: DeliveryResult
    transient_failures: int = 0
    transient_code: str = "http_503"
    landed: bool | None = None  # None: when `final` is ok


def ok() -> Step:
    """The send succeeds at once."""
    return Step(DeliveryResult(ok=True))


def transient(times: int, code: str = "http_503", then: Step | None = None) -> Step:
    """`times` transient failures, then `then` (default: success)."""
    final = (then or ok()).final
    return Step(final, transient_failures=times, transient_code=code)


def permanent(code: str = "rejected") -> Step:
    """A permanent provider rejection with `code`."""
    return Step(DeliveryResult(ok=False, error_code=code, permanent=True))


def ambiguous(*, landed: bool) -> Step:
    """The request left and no answer came; `landed`: the provider had it after all."""
    result = DeliveryResult(ok=False, error_code="timeout", ambiguous=True, detail="no answer")
    return Step(result, landed=landed)


def opted_out(code: str = "21610") -> Step:
    """The provider says the recipient opted out."""
    return Step(DeliveryResult(ok=False, error_code=code, permanent=True, opted_out=True))


async def _no_sleep(_: float) -> None:
    return None


class FakeChannelAdapter:
    """Serves every channel from memory; unscripted sends succeed."""

    name: ClassVar[str] = "fake"
    channels: ClassVar[frozenset[Channel]] = frozenset(ALL_CHANNELS)
    rate_per_second: ClassVar[float] = 0.0

    def __init__(
        self,
        retry: RetryPolicy | None = None,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        rate: float = 0.0,
    ) -> None:
        """`rate`: provider calls a second on each channel (0: unlimited), paced with
        real sleeps (the retries' backoff sleeps not at all)."""
        self._retry = retry or RetryPolicy(attempts=3)
        self._rate = rate
        self._pacer: LimiterFactory | None = None
        self._failure_threshold = failure_threshold
        self._reset_timeout = reset_timeout
        #: while set, every attempt fails transiently with this code (a provider outage)
        self.outage: str | None = None
        self._script: deque[Step] = deque()
        self._per_customer: dict[str, deque[Step]] = {}
        self._guards: dict[Channel, DeliveryGuard] = {}
        #: Every provider attempt, retries included.
        self.attempts: list[OutboundMessage] = []
        #: Messages that were delivered.
        self.sent: list[OutboundMessage] = []
        #: Every (message, final result) pair, in order.
        self.results: list[tuple[OutboundMessage, DeliveryResult]] = []
        #: What the provider got, in order: delivered ones and lost answers that landed.
        self.received: list[OutboundMessage] = []
        self.closed = False

    def script(self, *steps: Step, customer: str | None = None) -> None:
        """Queue `steps` for the next sends (to `customer` only, if given)."""
        if customer is None:
            self._script.extend(steps)
        else:
            self._per_customer.setdefault(customer, deque()).extend(steps)

    def _next_step(self, customer: str) -> Step:
        queue = self._per_customer.get(customer)
        if queue:
            return queue.popleft()
        if self._script:
            return self._script.popleft()
        return ok()

    def _guard(self, channel: Channel) -> DeliveryGuard:
        if channel not in self._guards:
            guard = DeliveryGuard(
                retry=self._retry,
                breaker=CircuitBreaker(self._failure_threshold, self._reset_timeout),
                sleep=_no_sleep,
                rand=lambda: 0.0,
            )
            guard.bucket = TokenBucket(self._rate)
            guard.pace_with(guard.bucket)
            if self._pacer is not None:
                pace_guards(self.name, {channel: guard}, self._pacer)
            self._guards[channel] = guard
        return self._guards[channel]

    def pace_with(self, make: LimiterFactory) -> None:
        """Pace the provider calls with limiters from `make` (a `PacedAdapter`); the
        channels' guards are made on first use, so each is paced as it is made."""
        self._pacer = make
        pace_guards(self.name, self._guards, make)

    def health(self) -> dict[Channel, HealthState]:
        """Circuit state per channel used so far."""
        return {channel: guard.state for channel, guard in self._guards.items()}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Play the next scripted step for this message."""
        step = self._next_step(message.recipient.customer)
        remaining = [step.transient_failures]

        def attempt() -> Awaitable[DeliveryResult]:
            self.attempts.append(message)
            if self.outage is not None:
                return _done(DeliveryResult(ok=False, error_code=self.outage))
            if remaining[0] > 0:
                remaining[0] -= 1
                result = DeliveryResult(ok=False, error_code=step.transient_code)
            elif step.final.ok:
                result = DeliveryResult(ok=True, provider_id=f"fake:{message.message_id}")
            else:
                result = step.final
            return _done(result)

        result = await self._guard(message.channel).run(attempt)
        if result.ok:
            self.sent.append(message)
        if result.ok if step.landed is None else step.landed:
            self.received.append(message)
        self.results.append((message, result))
        return result

    async def aclose(self) -> None:
        """Mark the adapter closed."""
        self.closed = True


def _done(result: DeliveryResult) -> Awaitable[DeliveryResult]:
    async def value() -> DeliveryResult:
        return result

    return value()


class ReconcilingFakeAdapter(FakeChannelAdapter):
    """A fake whose provider can be asked what it received (a `ReconcilingAdapter`)."""

    def __init__(
        self,
        retry: RetryPolicy | None = None,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
    ) -> None:
        super().__init__(retry, failure_threshold, reset_timeout)
        #: every question asked: (message id, since)
        self.questions: list[tuple[str, datetime]] = []

    async def reconcile(self, message: OutboundMessage, since: datetime) -> DeliveryResult | None:
        """Found (with a provider id) when the provider received this message id."""
        self.questions.append((message.message_id, since))
        if any(m.message_id == message.message_id for m in self.received):
            return DeliveryResult(ok=True, provider_id=f"fake:{message.message_id}")
        return None
