"""Token bucket, backoff with full jitter, circuit breaker — on injected clocks."""

from __future__ import annotations

import pytest

from omniconsole.adapters.channels.resilience import (
    CircuitBreaker,
    DeliveryGuard,
    RetryPolicy,
    TokenBucket,
    is_transient_status,
)
from omniconsole.domain.messages import DeliveryResult


class FakeTime:
    """A clock whose sleep advances it instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def test_transient_statuses() -> None:
    assert [s for s in (200, 400, 404, 408, 429, 500, 503, 599) if is_transient_status(s)] == [
        408,
        429,
        500,
        503,
        599,
    ]


def test_full_jitter_is_uniform_below_a_capped_exponential() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0)
    assert [policy.delay(n, lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(3, lambda: 0.25) == 1.0


@pytest.mark.asyncio
async def test_token_bucket_spaces_acquisitions_at_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(2.0, burst=1, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        await bucket.acquire()
    assert t.now == pytest.approx(1.0)  # first is free, then 0.5 s each


@pytest.mark.asyncio
async def test_unlimited_bucket_never_sleeps() -> None:
    t = FakeTime()
    bucket = TokenBucket(0, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        await bucket.acquire()
    assert t.sleeps == []


def test_breaker_opens_then_half_opens_then_closes() -> None:
    t = FakeTime()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=t.clock)
    assert breaker.state == "up"
    breaker.record_failure()
    assert breaker.state == "degraded"
    breaker.record_failure()
    assert breaker.state == "circuit_open" and not breaker.allow()
    t.now = 10
    assert breaker.state == "degraded"
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # no second trial while it is in flight
    breaker.record_success()
    assert breaker.state == "up" and breaker.allow()


def test_failed_trial_reopens_at_once() -> None:
    t = FakeTime()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=t.clock)
    for _ in range(3):
        breaker.record_failure()
    t.now = 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "circuit_open"


@pytest.mark.asyncio
async def test_guard_never_retries_permanent_errors() -> None:
    t = FakeTime()
    guard = DeliveryGuard(sleep=t.sleep, clock=t.clock)
    calls = 0

    async def attempt() -> DeliveryResult:
        nonlocal calls
        calls += 1
        return DeliveryResult(ok=False, error_code="21211", permanent=True)

    result = await guard.run(attempt)
    assert (result.error_code, calls, t.sleeps) == ("21211", 1, [])
    assert guard.state == "up"


@pytest.mark.asyncio
async def test_guard_retries_transient_errors_with_backoff() -> None:
    t = FakeTime()
    guard = DeliveryGuard(
        retry=RetryPolicy(attempts=4, base_delay=1), sleep=t.sleep, clock=t.clock, rand=lambda: 1
    )
    results = [DeliveryResult(ok=False, error_code="http_503")] * 2 + [DeliveryResult(ok=True)]

    async def attempt() -> DeliveryResult:
        return results.pop(0)

    assert (await guard.run(attempt)).ok
    assert t.sleeps == [1, 2]
    assert guard.state == "up"
