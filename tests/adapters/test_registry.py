"""The adapter table: configured channels get adapters, the others say why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniconsole.adapters.channels.email_smtp import SmtpEmailAdapter
from omniconsole.adapters.channels.messaging_twilio import TwilioMessagingAdapter
from omniconsole.adapters.channels.ports import ChannelAdapter
from omniconsole.adapters.channels.push_fcm import FcmPushAdapter
from omniconsole.adapters.channels.registry import build_adapters
from omniconsole.adapters.channels.settings import load_channel_settings
from omniconsole.domain.channels import Channel


@pytest.mark.asyncio
async def test_builds_adapters_for_configured_channels_only(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text("{}")
    settings = load_channel_settings(
        {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_FROM": "hello@example.com",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_SMS_FROM": "+15005550006",
            "FCM_CREDENTIALS_FILE": str(tmp_path / "sa.json"),
            "FCM_PROJECT_ID": "p",
        }
    )
    built = build_adapters(settings)

    assert isinstance(built.get(Channel.EMAIL), SmtpEmailAdapter)
    assert isinstance(built.get(Channel.SMS), TwilioMessagingAdapter)
    assert isinstance(built.get(Channel.PUSH), FcmPushAdapter)
    assert built.get(Channel.WHATSAPP) is None
    assert set(built.not_configured) == {Channel.WHATSAPP, Channel.RCS}
    assert built.not_configured[Channel.WHATSAPP].startswith("not configured: missing")
    assert all(isinstance(a, ChannelAdapter) for a in built.adapters)
    await built.aclose()


def test_nothing_configured_builds_nothing() -> None:
    built = build_adapters(load_channel_settings({}))
    assert built.by_channel == {}
    assert set(built.not_configured) == {
        Channel.EMAIL,
        Channel.SMS,
        Channel.WHATSAPP,
        Channel.RCS,
        Channel.PUSH,
    }
