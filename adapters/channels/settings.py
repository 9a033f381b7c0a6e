"""Channel configuration read from the environment (SPEC §7).

`load_channel_settings(env)` never raises for missing or malformed variables: each of
email, sms, whatsapp, rcs and push is either "configured" or "not configured: …" with
one line saying what is missing, so `serve` can start with the channels it has and the
console can show why the others are off. Secrets are wrapped in `Secret`, whose repr
and str never show the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.timeutil import TimeFormatError, format_duration, parse_duration

__all__ = [
    "CONFIGURED",
    "OUTBOUND_CHANNELS",
    "ChannelSettings",
    "DeliverySettings",
    "FcmSettings",
    "Secret",
    "SmtpSettings",
    "TwilioSettings",
    "load_channel_settings",
]

CONFIGURED: Final = "configured"
DEFAULT_TWILIO_API_BASE_URL: Final = "https://api.twilio.com"
DEFAULT_FCM_API_BASE_URL: Final = "https://fcm.googleapis.com"

#: The channels delivered by an external provider (in_app is the engine's own).
OUTBOUND_CHANNELS: Final[tuple[Channel, ...]] = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.WHATSAPP,
    Channel.RCS,
    Channel.PUSH,
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class Secret:
    """A string that does not show itself in repr(), str() or logs; call `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for handing to the client library only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP relay."""

    host: str
    port: int
    from_addr: str
    starttls: bool = True
    username: str | None = None
    password: Secret | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """Twilio account and senders; a sender left unset disables its channel."""

    account_sid: str
    auth_token: Secret
    sms_from: str | None = None
    whatsapp_from: str | None = None  # always normalised to "whatsapp:+E164"
    messaging_service_sid: str | None = None
    api_base_url: str = DEFAULT_TWILIO_API_BASE_URL
    timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class FcmSettings:
    """FCM HTTP v1: service-account credentials and project."""

    credentials_file: Path
    project_id: str
    api_base_url: str = DEFAULT_FCM_API_BASE_URL
    timeout: float = 15.0


#: How long a send may wait in the outbox for its provider, per category, before it
#: ends `failed adapter:expired`. Courier keeps transactional sends 72 h; a lifecycle
#: nudge a day late is still useful, a promotion six hours late mostly is not.
DEFAULT_MAX_AGE: Final[Mapping[str, timedelta]] = {
    Category.TRANSACTIONAL.value: timedelta(hours=72),
    Category.LIFECYCLE.value: timedelta(hours=24),
    Category.PROMOTIONAL.value: timedelta(hours=6),
}


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How the live outbox delivers: retries, their limits, and how much is in flight.

    Environment: OMNICONSOLE_OUTBOX_MAX_AGE_TRANSACTIONAL / _LIFECYCLE / _PROMOTIONAL
    (durations: 72h, 30m, 7d), OMNICONSOLE_DELIVERY_CONCURRENCY (sends in flight per
    channel), OMNICONSOLE_RETRY_BASE_SECONDS / OMNICONSOLE_RETRY_MAX_SECONDS (the
    outbox's backoff: base * 2^(attempts-1), jittered, at most max),
    OMNICONSOLE_RECONCILE_AFTER_SECONDS (how long after an ambiguous timeout the
    provider is asked whether it has the message).
    """

    max_age: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_AGE))
    concurrency: int = 16
    retry_base: float = 2.0
    retry_max: float = 300.0
    reconcile_after: float = 10.0

    def max_age_of(self, category: str) -> timedelta:
        """The longest a send of `category` may wait (the transactional one if unknown)."""
        return self.max_age.get(category, self.max_age[Category.TRANSACTIONAL.value])

    def describe(self) -> str:
        """One line for the start-up log."""
        ages = ", ".join(f"{c} {format_duration(a)}" for c, a in self.max_age.items())
        return (
            f"outbox: up to {self.concurrency} sends in flight per channel; "
            f"retries back off from {self.retry_base:g}s to {self.retry_max:g}s; "
            f"a send expires after {ages}"
        )


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Everything the adapters need, plus a status line per outbound channel."""

    public_url: str | None = None
    #: signs one-click unsubscribe links: OMNICONSOLE_UNSUBSCRIBE_SECRET, else the write key
    link_secret: Secret | None = field(default=None, repr=False)
    smtp: SmtpSettings | None = None
    twilio: TwilioSettings | None = None
    fcm: FcmSettings | None = None
    status: Mapping[Channel, str] = field(default_factory=dict)
    #: provider -> messages per second (OMNICONSOLE_RATE_EMAIL / _TWILIO / _FCM); unset
    #: providers keep the documented defaults the adapters declare
    rates: Mapping[str, float] = field(default_factory=dict)
    #: seconds an open circuit waits before a trial call (OMNICONSOLE_BREAKER_RESET_SECONDS)
    breaker_reset: float = 30.0
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    def is_configured(self, channel: Channel) -> bool:
        """Whether `channel` has every variable it needs."""
        return self.status.get(channel) == CONFIGURED

    @property
    def configured_channels(self) -> frozenset[Channel]:
        """The outbound channels that can be used."""
        return frozenset(c for c in OUTBOUND_CHANNELS if self.is_configured(c))

    def status_lines(self) -> list[str]:
        """One human-readable line per outbound channel, e.g. 'sms: configured'."""
        return [f"{c.value}: {self.status.get(c, 'not configured')}" for c in OUTBOUND_CHANNELS]

    @property
    def twilio_status_callback(self) -> str | None:
        """Where Twilio posts delivery status, or None without a public URL."""
        if not self.public_url:
            return None
        return f"{self.public_url}/webhooks/twilio/status"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from `name`, or `default` when unset."""
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise ValueError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def _load_delivery(env: Mapping[str, str]) -> DeliverySettings:
    max_age = dict(DEFAULT_MAX_AGE)
    for category in Category:
        name = f"OMNICONSOLE_OUTBOX_MAX_AGE_{category.value.upper()}"
        raw = _get(env, name)
        if raw is None:
            continue
        try:
            age = parse_duration(raw)
        except TimeFormatError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if age <= timedelta(0):
            raise ValueError(f"{name} must be above 0, got {raw!r}")
        max_age[category.value] = age
    raw = _get(env, "OMNICONSOLE_DELIVERY_CONCURRENCY")
    concurrency = 16
    if raw is not None:
        if not raw.isdigit() or not 0 < int(raw) <= 1000:
            raise ValueError(
                f"OMNICONSOLE_DELIVERY_CONCURRENCY must be a whole number 1-1000, got {raw!r}"
            )
        concurrency = int(raw)
    base = _seconds(env, "OMNICONSOLE_RETRY_BASE_SECONDS", 2.0)
    return DeliverySettings(
        max_age=max_age,
        concurrency=concurrency,
        retry_base=base,
        retry_max=max(base, _seconds(env, "OMNICONSOLE_RETRY_MAX_SECONDS", 300.0)),
        reconcile_after=_seconds(env, "OMNICONSOLE_RECONCILE_AFTER_SECONDS", 10.0),
    )


def _not_configured(problems: list[str]) -> str:
    return "not configured: " + "; ".join(problems)


def _missing(env: Mapping[str, str], *names: str) -> list[str]:
    return [n for n in names if _get(env, n) is None]


def _load_smtp(env: Mapping[str, str]) -> tuple[SmtpSettings | None, str]:
    problems: list[str] = []
    missing = _missing(env, "SMTP_HOST", "SMTP_FROM")
    username, password = _get(env, "SMTP_USERNAME"), _get(env, "SMTP_PASSWORD")
    if username and not password:
        missing.append("SMTP_PASSWORD")
    if password and not username:
        missing.append("SMTP_USERNAME")
    if missing:
        problems.append("missing " + ", ".join(missing))
    starttls = True
    raw_tls = _get(env, "SMTP_STARTTLS")
    if raw_tls is not None:
        if raw_tls.lower() in _TRUE:
            starttls = True
        elif raw_tls.lower() in _FALSE:
            starttls = False
        else:
            problems.append(f"SMTP_STARTTLS must be true or false, got {raw_tls!r}")
    port = 587 if starttls else 25
    raw_port = _get(env, "SMTP_PORT")
    if raw_port is not None:
        if raw_port.isdigit() and 0 < int(raw_port) < 65536:
            port = int(raw_port)
        else:
            problems.append(f"SMTP_PORT must be a port number, got {raw_port!r}")
    if problems:
        return None, _not_configured(problems)
    settings = SmtpSettings(
        host=env["SMTP_HOST"].strip(),
        port=port,
        from_addr=env["SMTP_FROM"].strip(),
        starttls=starttls,
        username=username,
        password=Secret(password) if password else None,
        timeout=_seconds(env, "SMTP_TIMEOUT", 30.0),
    )
    return settings, CONFIGURED


def _load_twilio(env: Mapping[str, str]) -> tuple[TwilioSettings | None, dict[Channel, str]]:
    base_missing = _missing(env, "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    sms_from = _get(env, "TWILIO_SMS_FROM")
    whatsapp_from = _get(env, "TWILIO_WHATSAPP_FROM")
    service = _get(env, "TWILIO_MESSAGING_SERVICE_SID")
    per_channel: dict[Channel, list[str]] = {
        Channel.SMS: []
        if sms_from or service
        else ["TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID"],
        Channel.WHATSAPP: [] if whatsapp_from else ["TWILIO_WHATSAPP_FROM"],
        Channel.RCS: [] if service else ["TWILIO_MESSAGING_SERVICE_SID"],
    }
    status = {
        channel: _not_configured(["missing " + ", ".join(base_missing + extra)])
        if base_missing or extra
        else CONFIGURED
        for channel, extra in per_channel.items()
    }
    if base_missing:
        return None, status
    if whatsapp_from and not whatsapp_from.startswith("whatsapp:"):
        whatsapp_from = f"whatsapp:{whatsapp_from}"
    settings = TwilioSettings(
        account_sid=env["TWILIO_ACCOUNT_SID"].strip(),
        auth_token=Secret(env["TWILIO_AUTH_TOKEN"].strip()),
        sms_from=sms_from,
        whatsapp_from=whatsapp_from,
        messaging_service_sid=service,
        api_base_url=(_get(env, "TWILIO_API_BASE_URL") or DEFAULT_TWILIO_API_BASE_URL).rstrip("/"),
        timeout=_seconds(env, "TWILIO_TIMEOUT", 15.0),
    )
    return settings, status


def _load_fcm(env: Mapping[str, str]) -> tuple[FcmSettings | None, str]:
    missing = _missing(env, "FCM_CREDENTIALS_FILE", "FCM_PROJECT_ID")
    if missing:
        return None, _not_configured(["missing " + ", ".join(missing)])
    path = Path(env["FCM_CREDENTIALS_FILE"].strip())
    if not path.is_file():
        return None, _not_configured([f"FCM_CREDENTIALS_FILE {str(path)!r} is not a file"])
    settings = FcmSettings(
        credentials_file=path,
        project_id=env["FCM_PROJECT_ID"].strip(),
        api_base_url=(_get(env, "FCM_API_BASE_URL") or DEFAULT_FCM_API_BASE_URL).rstrip("/"),
        timeout=_seconds(env, "FCM_TIMEOUT", 15.0),
    )
    return settings, CONFIGURED


def load_channel_settings(env: Mapping[str, str] | None = None) -> ChannelSettings:
    """Read channel settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    smtp, email_status = _load_smtp(env)
    twilio, twilio_status = _load_twilio(env)
    fcm, push_status = _load_fcm(env)
    public_url = _get(env, "OMNICONSOLE_PUBLIC_URL")
    status: dict[Channel, str] = {Channel.EMAIL: email_status, **twilio_status}
    status[Channel.PUSH] = push_status
    secret = _get(env, "OMNICONSOLE_UNSUBSCRIBE_SECRET") or _get(env, "OMNICONSOLE_WRITE_KEY")
    rates: dict[str, float] = {}
    for provider in ("email", "twilio", "fcm"):
        name = f"OMNICONSOLE_RATE_{provider.upper()}"
        raw = _get(env, name)
        if raw is None:
            continue
        try:
            rate = float(raw)
        except ValueError:
            rate = -1.0
        if not rate > 0:
            raise ValueError(f"{name} must be a number of messages per second above 0, got {raw!r}")
        rates[provider] = rate
    return ChannelSettings(
        rates=rates,
        breaker_reset=_seconds(env, "OMNICONSOLE_BREAKER_RESET_SECONDS", 30.0),
        delivery=_load_delivery(env),
        public_url=public_url.rstrip("/") if public_url else None,
        link_secret=Secret(secret) if secret else None,
        smtp=smtp,
        twilio=twilio,
        fcm=fcm,
        status=status,
    )
