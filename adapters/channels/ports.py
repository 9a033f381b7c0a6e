"""The ports the runtime talks to. Adapters implement them; actors depend only on these."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

from omniconsole.adapters.channels.resilience import LimiterFactory
from omniconsole.domain.channels import Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage


@runtime_checkable
class ChannelAdapter(Protocol):
    """Delivers messages on one or more channels.

    Capabilities are class attributes so the runtime can read them without an instance.
    `send` must never raise for a delivery problem: it returns a DeliveryResult saying
    what happened. It may raise only for programming errors.
    """

    name: ClassVar[str]
    channels: ClassVar[frozenset[Channel]]
    #: Provider's documented sustained rate, messages per second (0 = unlimited).
    rate_per_second: ClassVar[float]

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message; retries of transient errors happen inside."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ReconcilingAdapter(ChannelAdapter, Protocol):
    """An adapter whose provider can be asked, after an ambiguous send, whether it has
    the message (Twilio: the Messages list). The outbox asks before any second attempt.
    """

    async def reconcile(self, message: OutboundMessage, since: datetime) -> DeliveryResult | None:
        """The provider's record of `message`, sent by an attempt that started at `since`:
        an ok result with the provider's id when it has it; None when it has not (send
        again); a failed result when it could not be asked (ask again later)."""
        ...


@runtime_checkable
class PacedAdapter(ChannelAdapter, Protocol):
    """An adapter whose provider calls may be paced from outside: with limiters shared
    by several processes (`serve --ray` keeps one per provider and channel for the whole
    cluster) instead of its own token bucket per channel."""

    def pace_with(self, make: LimiterFactory) -> None:
        """From now on, pace each rate-limited channel's provider calls (retries
        included) with `make(self.name, channel, rate, burst)`, at the rate and burst
        this adapter paces that channel at on its own."""
        ...
