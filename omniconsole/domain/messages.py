"""What the engine asks a channel to deliver, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omniconsole.domain.channels import Category, Channel


@dataclass(frozen=True, slots=True)
class Handoff:
    """The engagement a message continues from: the customer last `action`ed on `channel`."""

    channel: str
    action: str  # "opened", "clicked" or "replied"
    at: str  # ISO 8601 UTC

    def to_json(self) -> dict[str, str]:
        """Ledger form."""
        return {"channel": self.channel, "action": self.action, "at": self.at}


@dataclass(frozen=True, slots=True)
class Recipient:
    """The addresses and traits of a customer that a channel adapter and templates need."""

    customer: str
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    first_name: str | None = None
    locale: str | None = None
    timezone: str = "UTC"
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to deliver on one channel. `message_id` is stable across retries."""

    message_id: str
    channel: Channel
    category: Category
    journey: str
    step: str
    recipient: Recipient
    subject: str
    text: str
    html: str | None = None
    handoff: Handoff | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a channel adapter reports for one send attempt.

    `error_code` is a short code for the ledger's `adapter:<code>` reason (e.g. `21610`,
    `smtp_550`, `timeout`); `permanent` says whether retrying could ever help;
    `opted_out` is set when the provider says the recipient has opted out; `ambiguous`
    when the request left but no answer came (a timeout after sending): the provider may
    have the message, so it must not be sent again blindly.
    """

    ok: bool
    provider_id: str | None = None
    error_code: str | None = None
    permanent: bool = False
    opted_out: bool = False
    detail: str = ""
    ambiguous: bool = False
