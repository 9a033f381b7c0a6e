"""Email over SMTP (aiosmtplib): MIME multipart/alternative, RFC 8058 one-click unsubscribe.

Header values come from customer data (a name in the subject, the address): CR, LF and
other control characters are cleaned out of them — never a failed send, never an
injected header. An address that is still not one after its surrounding whitespace is
trimmed is a permanent `invalid_address`.

A timeout or a dropped connection once DATA has begun is *ambiguous*: the server may
have accepted the message before its reply was lost (RFC 1047). SMTP has no way to ask,
so such a send is not retried here, and the outbox records it `unconfirmed` instead of
sending it again (which RFC 1047 shows is how duplicates are made); a failure before
DATA is a plain transient one.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import email.policy
import logging
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import ClassVar
from urllib.parse import quote, urlencode

import aiosmtplib

from omniconsole.adapters.channels.resilience import (
    CircuitBreaker,
    DeliveryGuard,
    HealthState,
    LimiterFactory,
    RetryPolicy,
    Sleep,
    pace_guards,
)
from omniconsole.adapters.channels.settings import SmtpSettings
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import DeliveryResult, OutboundMessage
from omniconsole.domain.unsubscribe import link_token

__all__ = [
    "InvalidAddress",
    "SmtpEmailAdapter",
    "build_email",
    "clean_header",
    "message_id_header",
    "recipient_address",
]

_log = logging.getLogger(__name__)

# RFC 5322 atext minus '=' (our escape character) and '.' (dot-atoms forbid '..').
_ATEXT_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]")


SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)

# CR, LF and the other C0/C1 controls: none belongs in a header value
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_header(value: str) -> str:
    """`value` on one line: every run of control characters (CR, LF, …) is one space."""
    return _HEADER_UNSAFE.sub(" ", value).strip()


class InvalidAddress(ValueError):
    """The recipient's email trait is not an address we can put in `To`."""


def message_id_header(message_id: str) -> str:
    """`<id@omniconsole>` with every character outside RFC 5322 atext escaped as `=HH`.

    The escape is reversible, so two different message ids never share a Message-ID.
    """
    local = "".join(
        ch if _ATEXT_SAFE.fullmatch(ch) else "".join(f"={b:02X}" for b in ch.encode())
        for ch in message_id
    )
    return f"<{local or 'empty'}@omniconsole>"


def _unsubscribe_headers(
    message: OutboundMessage, from_addr: str, public_url: str | None, secret: str | None
) -> dict[str, str]:
    _, sender = parseaddr(from_addr)
    subject = quote(f"unsubscribe {message.recipient.customer}")
    uris = [f"<mailto:{sender}?subject={subject}>"]
    headers: dict[str, str] = {}
    if public_url and secret:
        customer = message.recipient.customer
        query = urlencode(
            {
                "customer": customer,
                "channel": Channel.EMAIL.value,
                "message_id": message.message_id,
                "token": link_token(secret, customer, Channel.EMAIL.value, message.message_id),
            }
        )
        uris.insert(0, f"<{public_url}/unsubscribe?{query}>")
        # RFC 8058 §3.1: only meaningful alongside an HTTPS List-Unsubscribe URI.
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["List-Unsubscribe"] = ", ".join(uris)
    return headers


def recipient_address(raw: str) -> Address:
    """The `To` address of an email trait: surrounding whitespace (a pasted CR/LF) is
    trimmed; what is left must be one address, with no control character inside."""
    address = raw.strip()
    if not address or _HEADER_UNSAFE.search(address):
        raise InvalidAddress(f"not an email address: {raw!r}")
    try:
        return Address(addr_spec=address)
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        raise InvalidAddress(f"not an email address: {raw!r} ({exc})") from None


def build_email(
    message: OutboundMessage,
    from_addr: str,
    public_url: str | None = None,
    now: datetime | None = None,
    link_secret: str | None = None,
) -> EmailMessage:
    """The MIME message for `message`: text part, plus an HTML alternative when given."""
    if not message.recipient.email:
        raise InvalidAddress(f"message {message.message_id} has no email recipient")
    # RFC 5322's 998-character line limit: the default 78 would fold the long unsubscribe
    # URL into an RFC 2047 encoded-word, which mail clients do not read as a link.
    mime = EmailMessage(policy=SMTP_POLICY)
    mime["Subject"] = clean_header(message.subject)
    mime["From"] = from_addr
    mime["To"] = recipient_address(message.recipient.email)
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    mime["Message-ID"] = message_id_header(message.message_id)
    mime["X-Omniconsole-Journey"] = clean_header(f"{message.journey}/{message.step}")
    if message.category is not Category.TRANSACTIONAL:
        for name, value in _unsubscribe_headers(
            message, from_addr, public_url, link_secret
        ).items():
            mime[name] = value
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def _classify(exc: Exception, in_data: bool = False) -> DeliveryResult:
    """Map an aiosmtplib failure: 5xx replies are permanent, other replies are worth
    retrying; no reply at all once DATA began is ambiguous (the server may have it)."""
    code: int | None = None
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
    detail = f"{type(exc).__name__}: {exc}"
    if code is not None and 500 <= code <= 599:
        return DeliveryResult(ok=False, error_code=f"smtp_{code}", permanent=True, detail=detail)
    if code is not None and code > 0:
        return DeliveryResult(ok=False, error_code=f"smtp_{code}", detail=detail)
    if in_data:
        code_word = "timeout" if isinstance(exc, TimeoutError) else "no_answer"
        return DeliveryResult(ok=False, error_code=code_word, ambiguous=True, detail=detail)
    if isinstance(exc, TimeoutError):
        return DeliveryResult(ok=False, error_code="timeout", detail=detail)
    return DeliveryResult(ok=False, error_code="connection", detail=detail)


class SmtpEmailAdapter:
    """Delivers `email` messages to an SMTP relay, one connection per message."""

    name: ClassVar[str] = "email_smtp"
    channels: ClassVar[frozenset[Channel]] = frozenset({Channel.EMAIL})
    #: A conservative default for a shared relay; providers document 10-50/s.
    rate_per_second: ClassVar[float] = 10.0

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        public_url: str | None = None,
        link_secret: str | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        rate_per_second: float | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._public_url = public_url
        self._link_secret = link_secret
        self._guard = DeliveryGuard(
            rate_per_second=self.rate_per_second if rate_per_second is None else rate_per_second,
            retry=retry,
            breaker=breaker,
            sleep=sleep,
            rand=rand,
        )

    def pace_with(self, make: LimiterFactory) -> None:
        """Pace the provider calls with limiters from `make` (a `PacedAdapter`)."""
        pace_guards(self.name, {Channel.EMAIL: self._guard}, make)

    def health(self) -> dict[Channel, HealthState]:
        """Circuit state per channel, for the console."""
        return {Channel.EMAIL: self._guard.state}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one email; transient failures are retried inside."""
        if message.channel is not Channel.EMAIL:
            raise ValueError(f"{self.name} cannot send on {message.channel}")
        if not message.recipient.email:
            return DeliveryResult(
                ok=False, error_code="no_address", permanent=True, detail="no email address"
            )
        try:
            mime = build_email(
                message, self._settings.from_addr, self._public_url, link_secret=self._link_secret
            )
            # Flattened here with our policy: aiosmtplib would re-fold at 78 columns.
            content = mime.as_bytes(policy=SMTP_POLICY)
        except InvalidAddress as exc:
            return DeliveryResult(
                ok=False, error_code="invalid_address", permanent=True, detail=str(exc)
            )
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            # the same content fails the same way every time: not worth a retry
            return DeliveryResult(
                ok=False, error_code="invalid_message", permanent=True, detail=repr(exc)
            )
        return await self._guard.run(lambda: self._attempt(mime, content))

    async def _attempt(self, mime: EmailMessage, content: bytes) -> DeliveryResult:
        s = self._settings
        _, sender = parseaddr(str(mime["From"]))
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.reveal() if s.password else None,
            start_tls=s.starttls,
            timeout=s.timeout,
        )
        in_data = False
        try:
            try:
                await smtp.connect()
                await smtp.mail(sender)
                await smtp.rcpt(str(mime["To"]))
                in_data = True
                await smtp.data(content)
            finally:
                if smtp.is_connected:
                    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                        await smtp.quit()
                smtp.close()
        except (aiosmtplib.SMTPException, OSError) as exc:
            result = _classify(exc, in_data)
            _log.info("smtp send %s failed: %s", mime["Message-ID"], result.error_code)
            return result
        return DeliveryResult(ok=True, provider_id=str(mime["Message-ID"]))

    async def aclose(self) -> None:
        """Nothing to release: connections are per message."""
