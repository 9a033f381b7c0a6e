"""Which adapter serves which channel: an explicit name → factory table, no scanning."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.channels.resilience import CircuitBreaker
from omniconsole.adapters.channels.settings import OUTBOUND_CHANNELS, ChannelSettings
from omniconsole.domain.channels import Channel

__all__ = [
    "ADAPTER_FACTORIES",
    "AdapterFactory",
    "ChannelAdapters",
    "build_adapters",
]

AdapterFactory = Callable[[ChannelSettings], ChannelAdapter]


def _email(settings: ChannelSettings) -> ChannelAdapter:
    from omniconsole.adapters.channels.email_smtp import SmtpEmailAdapter

    assert settings.smtp is not None
    secret = settings.link_secret.reveal() if settings.link_secret else None
    return SmtpEmailAdapter(
        settings.smtp,
        public_url=settings.public_url,
        link_secret=secret,
        rate_per_second=settings.rates.get("email"),
        breaker=CircuitBreaker(reset_timeout=settings.breaker_reset),
    )


def _twilio(settings: ChannelSettings) -> ChannelAdapter:
    # Imported on use: the Twilio SDK is large and replays never need it.
    from omniconsole.adapters.channels.messaging_twilio import TwilioMessagingAdapter

    assert settings.twilio is not None
    return TwilioMessagingAdapter(
        settings.twilio,
        status_callback=settings.twilio_status_callback,
        rate_per_second=settings.rates.get("twilio"),
        breaker_factory=lambda: CircuitBreaker(reset_timeout=settings.breaker_reset),
    )


def _fcm(settings: ChannelSettings) -> ChannelAdapter:
    from omniconsole.adapters.channels.push_fcm import FcmPushAdapter

    assert settings.fcm is not None
    return FcmPushAdapter(
        settings.fcm,
        rate_per_second=settings.rates.get("fcm"),
        breaker=CircuitBreaker(reset_timeout=settings.breaker_reset),
    )


#: adapter name → (channels it can serve, factory). Order is the build order.
ADAPTER_FACTORIES: Mapping[str, tuple[frozenset[Channel], AdapterFactory]] = {
    "email_smtp": (frozenset({Channel.EMAIL}), _email),
    "twilio": (frozenset({Channel.SMS, Channel.WHATSAPP, Channel.RCS}), _twilio),
    "fcm": (frozenset({Channel.PUSH}), _fcm),
}


@dataclass
class ChannelAdapters:
    """The adapters built for a run, by channel, and why the other channels are off."""

    by_channel: dict[Channel, ChannelAdapter] = field(default_factory=dict)
    not_configured: dict[Channel, str] = field(default_factory=dict)

    def get(self, channel: Channel) -> ChannelAdapter | None:
        """The adapter for `channel`, or None when it is not configured."""
        return self.by_channel.get(channel)

    @property
    def adapters(self) -> list[ChannelAdapter]:
        """Each distinct adapter once (Twilio serves three channels)."""
        seen: dict[int, ChannelAdapter] = {}
        for adapter in self.by_channel.values():
            seen.setdefault(id(adapter), adapter)
        return list(seen.values())

    async def aclose(self) -> None:
        """Close every adapter once."""
        for adapter in self.adapters:
            await adapter.aclose()


def build_adapters(
    settings: ChannelSettings,
    factories: Mapping[str, tuple[frozenset[Channel], AdapterFactory]] = ADAPTER_FACTORIES,
) -> ChannelAdapters:
    """Build one adapter per factory that has at least one configured channel."""
    built = ChannelAdapters()
    for channels, factory in factories.values():
        configured = [c for c in OUTBOUND_CHANNELS if c in channels and settings.is_configured(c)]
        for channel in OUTBOUND_CHANNELS:
            if channel in channels and channel not in configured:
                built.not_configured[channel] = settings.status.get(channel, "not configured")
        if configured:
            adapter = factory(settings)
            for channel in configured:
                built.by_channel[channel] = adapter
    return built
