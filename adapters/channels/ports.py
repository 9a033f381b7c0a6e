"""The ports the runtime talks to. Adapters implement them; actors depend only on these."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

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
