"""What the HTTP front of `omniconsole serve` needs from the runtime, and its settings.

The HTTP layer (`adapters.http.service`) only parses, authenticates and converts; the
runtime behind `IngestSink` makes events durable, dedupes them by `messageId` and
knows which customer owns a phone number.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.events import Event

__all__ = [
    "BODY_TIMEOUT",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "HttpSettings",
    "IngestResult",
    "IngestSink",
    "PreferenceSource",
    "SettingsError",
]

#: Segment's documented limit for one call (and one item of a batch): 32 KB.
MAX_EVENT_BYTES = 32 << 10
#: Segment's documented limit for one batch request: 500 KB.
MAX_BATCH_BYTES = 500 << 10
#: How long a request body may take to arrive: 500 KB at a slow mobile 100 kB/s is 5 s.
BODY_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the sink did with a list of events: how many were new, how many repeats,
    which it refused.

    `duplicate_ids` names the repeated `messageId`s when the sink knows them; the
    HTTP layer uses them only to attribute the duplicates metric to event types.
    `rejected` lists (index in the list, reason) of events the sink could not take;
    the others were taken.
    """

    accepted: int
    duplicates: int = 0
    duplicate_ids: frozenset[str] = frozenset()
    rejected: tuple[tuple[int, str], ...] = ()


@runtime_checkable
class IngestSink(Protocol):
    """The runtime's side of the HTTP front. All methods run on the server's event loop."""

    async def accept(self, events: list[Event]) -> IngestResult:
        """Make `events` durable, in order, and return only once they are.

        Events whose `message_id` was already accepted are counted as duplicates and
        not applied again. Raising means nothing was made durable; the HTTP layer
        answers 503 so the sender retries (dedupe makes the retry safe).
        """
        ...

    async def customers_for_phone(self, phone: str) -> list[str]:
        """Every customer whose profile holds this E.164 phone number (an address may be
        shared: an opt-out from it belongs to all of them)."""
        ...

    def health(self) -> dict[str, Any]:
        """JSON-able details for `/healthz`, e.g. `{"channels": {...}, "queue": 3}`.
        `"accepting": False` means events handed in now would not be stored: 503."""
        ...


@runtime_checkable
class PreferenceSource(Protocol):
    """What the preference page reads: a customer's topic choices as last committed.
    Runs on the server's event loop."""

    async def channel_state(self, customer: str) -> ChannelState | None:
        """The customer's channel state (topic choices among it), None if none is stored."""
        ...


class SettingsError(ValueError):
    """A required environment variable is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Settings of the HTTP front. Secrets are kept out of `repr` (and so out of logs).

    `public_url` is the base URL Twilio reaches us at, without a trailing slash; when
    None, webhook signatures are checked against the URL the request itself names.
    `twilio_auth_token` None means webhooks cannot be verified and are refused.
    """

    write_key: str = field(repr=False)
    public_url: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    #: verifies one-click unsubscribe links; None: the write key signs them
    link_secret: str | None = field(default=None, repr=False)
    #: authenticates agent actions (`/operator/...`); None: they are refused
    operator_key: str | None = field(default=None, repr=False)
    max_event_bytes: int = MAX_EVENT_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES
    #: seconds a request body may take to arrive (then 408)
    body_timeout: float = BODY_TIMEOUT

    def __post_init__(self) -> None:
        if not self.write_key:
            raise SettingsError("OMNICONSOLE_WRITE_KEY must not be empty")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(
                    "OMNICONSOLE_PUBLIC_URL must be an absolute http(s) URL, "
                    f"e.g. https://hooks.example.com (got {self.public_url!r})"
                )
            if parts.query or parts.fragment:
                raise SettingsError("OMNICONSOLE_PUBLIC_URL must not carry a query or fragment")
            object.__setattr__(self, "public_url", self.public_url.rstrip("/"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpSettings:
        """Read OMNICONSOLE_WRITE_KEY (required), OMNICONSOLE_PUBLIC_URL, TWILIO_AUTH_TOKEN,
        OMNICONSOLE_UNSUBSCRIBE_SECRET and OMNICONSOLE_OPERATOR_KEY."""
        env = os.environ if environ is None else environ
        write_key = env.get("OMNICONSOLE_WRITE_KEY", "").strip()
        if not write_key:
            raise SettingsError(
                "OMNICONSOLE_WRITE_KEY is not set: `serve` needs the ingest write key"
            )
        public_url = env.get("OMNICONSOLE_PUBLIC_URL", "").strip() or None
        token = env.get("TWILIO_AUTH_TOKEN", "").strip() or None
        link_secret = env.get("OMNICONSOLE_UNSUBSCRIBE_SECRET", "").strip() or None
        operator_key = env.get("OMNICONSOLE_OPERATOR_KEY", "").strip() or None
        return cls(
            write_key=write_key,
            public_url=public_url,
            twilio_auth_token=token,
            link_secret=link_secret,
            operator_key=operator_key,
        )

    @property
    def webhooks_verifiable(self) -> bool:
        """Whether Twilio webhook signatures can be checked (an auth token is set)."""
        return self.twilio_auth_token is not None
