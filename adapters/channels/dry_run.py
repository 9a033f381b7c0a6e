"""An adapter that delivers nothing: replays and demos record what would have been sent."""

from __future__ import annotations

from typing import ClassVar

from omniconsole.domain.channels import ALL_CHANNELS, Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage

__all__ = ["DryRunAdapter"]


class DryRunAdapter:
    """Accepts every message on every channel and keeps it in `sent`, in order.

    The provider id is derived from the message id only, so replays stay byte-for-byte
    reproducible.
    """

    name: ClassVar[str] = "dry_run"
    channels: ClassVar[frozenset[Channel]] = frozenset(ALL_CHANNELS)
    rate_per_second: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.closed = False

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Record `message` and report success."""
        self.sent.append(message)
        return DeliveryResult(ok=True, provider_id=f"dry-run:{message.message_id}")

    async def aclose(self) -> None:
        """Mark the adapter closed; the record stays readable."""
        self.closed = True
