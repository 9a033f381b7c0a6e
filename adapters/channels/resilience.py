"""Rate limiting, retries and circuit breaking shared by the channel adapters.

Every adapter funnels each delivery through a `DeliveryGuard`: it asks the channel's
`CircuitBreaker` whether the provider may be called at all, waits for a `TokenBucket`
token, makes one attempt, and retries transient failures with exponential backoff and
full jitter. Clocks, sleeps and randomness are injectable so tests never wait on the
wall clock.

A *transient* failure is a `DeliveryResult` with ``ok=False`` and ``permanent=False``
(429, 5xx, connection refused, a timeout before the request left); permanent failures
are never retried and do not count against the breaker, because they say something
about the recipient or the message, not about the provider's health. An *ambiguous*
one (``ambiguous=True``: the request left, no answer came) counts against the breaker
but is never retried here: the provider may have the message, and only the outbox,
after asking the provider, may send it again.

The retries here are the quick ones, inside one delivery; a send that still fails
transiently goes back to the outbox, which tries again later with its own backoff.

Each guard paces its provider calls with its own `TokenBucket` — the limit of one
process. Where several processes send for one provider (`serve --ray`: a partition per
node), `DeliveryGuard.pace_with` swaps in another `Limiter` (one bucket the processes
share); an adapter offers that through `PacedAdapter.pace_with` (`ports.py`).
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from omniconsole.domain.channels import Channel
from omniconsole.domain.messages import DeliveryResult

__all__ = [
    "CIRCUIT_OPEN",
    "CircuitBreaker",
    "DeliveryGuard",
    "HealthState",
    "Limiter",
    "LimiterFactory",
    "RetryPolicy",
    "Sleep",
    "TokenBucket",
    "is_transient_status",
    "pace_guards",
]

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
HealthState = Literal["up", "degraded", "circuit_open"]

#: Result code used when the breaker refuses to call the provider.
CIRCUIT_OPEN = "circuit_open"


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 429 and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599


class Limiter(Protocol):
    """Paces the calls to a provider."""

    async def acquire(self) -> None:
        """Return once one more call may go to the provider."""
        ...


#: Makes the limiter for one adapter's calls on one channel, from the adapter's name,
#: the channel, and the rate and burst the adapter paces that channel at on its own.
LimiterFactory = Callable[[str, Channel, float, float], Limiter]


class TokenBucket:
    """An async token bucket: at most `rate` acquisitions per second, bursts up to `burst`.

    ``rate <= 0`` means unlimited. Waiters are served in arrival order because the
    lock is held while sleeping for the next token.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        if self.rate <= 0:
            return
        async with self._lock:
            self._refill()
            while self._tokens < 1.0:
                await self._sleep((1.0 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS architecture blog, 2015).

    Attempt ``n`` (0-based) that failed transiently is followed by a sleep drawn
    uniformly from ``[0, min(max_delay, base_delay * 2**n)]``.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, failed_attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait after the 0-based `failed_attempt` failed."""
        ceiling = min(self.max_delay, self.base_delay * (2.0**failed_attempt))
        return rand() * ceiling


class CircuitBreaker:
    """A per-channel circuit breaker: closed → open → half-open → closed.

    Opens after `failure_threshold` consecutive transient failures; after
    `reset_timeout` seconds one trial call is let through (half-open): success closes
    the circuit, failure opens it again.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> HealthState:
        """What the console shows: 'up', 'degraded' (recent failures, or probing) or 'circuit_open'."""
        if self._opened_at is None:
            return "degraded" if self._failures else "up"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "degraded"  # half-open: the next call is a trial
        return "circuit_open"

    def allow(self) -> bool:
        """Whether a call may go to the provider now (claims the trial slot when half-open)."""
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at < self.reset_timeout or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        """The provider answered well: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """A transient failure: count it, and open (or re-open) the circuit at the threshold."""
        self._failures += 1
        if self._trial_in_flight or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
        self._trial_in_flight = False


class DeliveryGuard:
    """Runs one delivery through breaker, rate limiter and retry policy.

    One guard per channel, so a broken WhatsApp sender does not trip SMS.
    """

    def __init__(
        self,
        *,
        rate_per_second: float = 0.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = _random.random,
        clock: Clock = time.monotonic,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.bucket = TokenBucket(rate_per_second, clock=clock, sleep=sleep)
        self.limiter: Limiter = self.bucket
        self._sleep = sleep
        self._rand = rand

    def pace_with(self, limiter: Limiter) -> None:
        """Pace this channel's provider calls with `limiter` rather than the guard's own
        bucket (`bucket`, which keeps the rate it was made with). Every attempt takes a
        slot from it, retries included."""
        self.limiter = limiter

    @property
    def state(self) -> HealthState:
        """The breaker's health state for this channel."""
        return self.breaker.state

    async def run(self, attempt: Callable[[], Awaitable[DeliveryResult]]) -> DeliveryResult:
        """Call `attempt` until it succeeds, fails permanently, or attempts run out."""
        result = DeliveryResult(ok=False, error_code=CIRCUIT_OPEN)
        for n in range(self.retry.attempts):
            if not self.breaker.allow():
                return DeliveryResult(
                    ok=False,
                    error_code=CIRCUIT_OPEN,
                    detail=f"circuit open; last error: {result.error_code}" if n else "",
                )
            await self.limiter.acquire()
            result = await attempt()
            if result.ok:
                self.breaker.record_success()
                return result
            if result.permanent:
                # The provider is healthy; the message or recipient is not.
                self.breaker.record_success()
                return result
            self.breaker.record_failure()
            if result.ambiguous:
                return result  # a second attempt could deliver it twice
            if n + 1 < self.retry.attempts:
                await self._sleep(self.retry.delay(n, self._rand))
        return result


def pace_guards(
    adapter: str, guards: Mapping[Channel, DeliveryGuard], make: LimiterFactory
) -> None:
    """Pace each channel's guard of `adapter` with the limiter `make` gives for it (at
    the guard's own rate and burst); a channel without a rate limit stays unpaced."""
    for channel, guard in guards.items():
        bucket = guard.bucket
        if bucket.rate > 0:
            guard.pace_with(make(adapter, channel, bucket.rate, bucket.burst))
