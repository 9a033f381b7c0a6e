"""What a support agent may ask the running service to do: the seam between them.

The console never writes the store: an agent's action (an opt-out or opt-in the
customer asked for on the phone) goes to `serve`, which records it as an event naming
the agent (`Unsubscribed`/`Subscribed` with `source: operator`), like any other event.
The console holds only `OperatorActions`; the CLI composes it with the HTTP client
(`omniconsole.adapters.http.operator_client`), so the TUI stays free of HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["CONSENT_ACTIONS", "ConsentChange", "OperatorActions", "OperatorError"]

#: the consent actions an agent may record, and the event each becomes
CONSENT_ACTIONS = {"opt_out": "Unsubscribed", "opt_in": "Subscribed"}


class OperatorError(RuntimeError):
    """The service refused or could not be reached; the message says why, in words."""


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """What the service recorded: the event it accepted."""

    customer: str
    channel: str
    opted_in: bool
    agent: str
    event_id: str
    duplicate: bool = False


class OperatorActions(Protocol):
    """The running service's operator actions. Call from a worker thread (blocking)."""

    @property
    def agent(self) -> str:
        """Who the actions are recorded as."""

    def describe(self) -> str:
        """Where the service is (its URL; never the key)."""

    def record_consent(self, customer: str, channel: str, *, opt_in: bool) -> ConsentChange:
        """Record that `customer` opted out of (or back in to) `channel`; raises
        `OperatorError` when the service refuses or cannot be reached."""
