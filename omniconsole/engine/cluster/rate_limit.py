"""One rate limit per provider across the whole cluster: a token bucket as a Ray actor.

On one machine each channel adapter paces its own sends (`resilience.TokenBucket`). With
several live partitions on several nodes, each with its own adapters, per-process
buckets would multiply the provider's limit by the number of partitions. Instead one
named actor per provider and channel (`rate-<adapter>-<channel>`, e.g.
`rate-twilio-sms`) holds the bucket, and every partition's adapter asks it for slots:
each partition's delivery runner paces its adapters with `cluster_limiter`, through the
adapters' public hook (`DeliveryRunner.pace_with` → `PacedAdapter.pace_with`).

The actor *reserves* rather than waits: `reserve()` takes a token now even when the
bucket is empty (its level goes below zero) and answers how long the caller must wait
before its send — so the actor never blocks, one call per send is enough, and callers
are served in the order they asked. The caller sleeps locally (`ClusterBucket.acquire`).

This module imports Ray: import it only once Ray is known to be there.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from omniconsole.domain.channels import Channel

#: the Ray namespace of omniconsole's named actors
NAMESPACE = "omniconsole"


class Reservations:
    """A token bucket that lends: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.clock = clock
        self.last = clock()
        self.served = 0.0  # tokens handed out

    def reserve(self, n: float = 1.0) -> float:
        """Take `n` tokens; the seconds to wait before using them (0: at once)."""
        self.served += n
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@ray.remote(num_cpus=0.01, max_restarts=-1)
class TokenBucketActor:
    """The bucket of one provider, for every partition of the cluster."""

    def __init__(self, rate: float, burst: float) -> None:
        """Runs on the actor's worker thread."""
        self.bucket = Reservations(rate, burst)

    def reserve(self, n: float = 1.0) -> float:
        """Runs on the actor's worker thread: `Reservations.reserve`."""
        return self.bucket.reserve(n)

    def served(self) -> float:
        """Runs on the actor's worker thread: the tokens handed out so far."""
        return self.bucket.served


def bucket_actor(provider: str, rate: float, burst: float | None = None) -> Any:
    """The cluster's bucket of `provider`, created by whoever asks first (it outlives
    them: detached), with `rate`/`burst` of that first caller."""
    return TokenBucketActor.options(  # type: ignore[attr-defined]
        name=f"rate-{provider}",
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
    ).remote(rate, burst if burst is not None else max(1.0, rate))


class ClusterBucket:
    """A provider's cluster-wide bucket as a `resilience.Limiter` (`acquire`)."""

    def __init__(self, provider: str, rate: float, burst: float | None = None) -> None:
        self.provider = provider
        self.rate = rate
        self.acquired = 0  # slots this process took
        self._actor = bucket_actor(provider, rate, burst)

    async def acquire(self) -> None:
        """Wait until this process may send one more message to the provider."""
        if self.rate <= 0:
            return
        self.acquired += 1
        delay = await self._actor.reserve.remote()
        if delay > 0:
            await asyncio.sleep(delay)


def cluster_limiter(adapter: str, channel: Channel, rate: float, burst: float) -> ClusterBucket:
    """A `resilience.LimiterFactory`: the cluster's bucket for `adapter`'s sends on
    `channel`, at the rate and burst the adapter would pace them at alone."""
    return ClusterBucket(f"{adapter}-{channel.value}", rate, burst)
