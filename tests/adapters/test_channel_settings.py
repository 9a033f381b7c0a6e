"""Channel settings from the environment: status lines, and secrets that never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniconsole.adapters.channels.settings import CONFIGURED, Secret, load_channel_settings
from omniconsole.domain.channels import Channel

ACCOUNT_SID = "AC" + "0" * 32
SERVICE_SID = "MG" + "1" * 32


def full_env(credentials_file: Path) -> dict[str, str]:
    return {
        "OMNICONSOLE_PUBLIC_URL": "https://omni.example.com/",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "2525",
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "smtp-secret-value",
        "SMTP_FROM": "Omni <hello@example.com>",
        "SMTP_STARTTLS": "false",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "twilio-secret-value",
        "TWILIO_SMS_FROM": "+15005550006",
        "TWILIO_WHATSAPP_FROM": "+14155238886",
        "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        "TWILIO_API_BASE_URL": "http://127.0.0.1:4010/",
        "FCM_CREDENTIALS_FILE": str(credentials_file),
        "FCM_PROJECT_ID": "omni-test",
        "FCM_API_BASE_URL": "http://127.0.0.1:9000",
    }


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "sa.json"
    path.write_text("{}")
    return path


def test_empty_environment_says_what_each_channel_misses() -> None:
    settings = load_channel_settings({})

    assert settings.status_lines() == [
        "email: not configured: missing SMTP_HOST, SMTP_FROM",
        "sms: not configured: missing TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
        "TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID",
        "whatsapp: not configured: missing TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
        "TWILIO_WHATSAPP_FROM",
        "rcs: not configured: missing TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
        "TWILIO_MESSAGING_SERVICE_SID",
        "push: not configured: missing FCM_CREDENTIALS_FILE, FCM_PROJECT_ID",
    ]
    assert settings.configured_channels == frozenset()
    assert settings.twilio_status_callback is None


def test_full_environment_configures_every_channel(credentials_file: Path) -> None:
    settings = load_channel_settings(full_env(credentials_file))

    assert all(line.endswith(": configured") for line in settings.status_lines())
    assert settings.configured_channels == {
        Channel.EMAIL,
        Channel.SMS,
        Channel.WHATSAPP,
        Channel.RCS,
        Channel.PUSH,
    }
    assert settings.smtp is not None and settings.smtp.port == 2525
    assert settings.smtp.starttls is False
    assert settings.twilio is not None
    assert settings.twilio.whatsapp_from == "whatsapp:+14155238886"
    assert settings.twilio.api_base_url == "http://127.0.0.1:4010"
    assert settings.twilio_status_callback == "https://omni.example.com/webhooks/twilio/status"
    assert settings.fcm is not None and settings.fcm.project_id == "omni-test"


def test_sms_through_messaging_service_alone_but_no_whatsapp() -> None:
    settings = load_channel_settings(
        {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        }
    )
    assert settings.status[Channel.SMS] == CONFIGURED
    assert settings.status[Channel.RCS] == CONFIGURED
    assert settings.status[Channel.WHATSAPP] == "not configured: missing TWILIO_WHATSAPP_FROM"


def test_malformed_values_are_named(tmp_path: Path) -> None:
    settings = load_channel_settings(
        {
            "SMTP_HOST": "h",
            "SMTP_FROM": "f@example.com",
            "SMTP_PORT": "smtp",
            "FCM_CREDENTIALS_FILE": str(tmp_path / "missing.json"),
            "FCM_PROJECT_ID": "p",
        }
    )
    assert settings.status[Channel.EMAIL] == (
        "not configured: SMTP_PORT must be a port number, got 'smtp'"
    )
    assert "is not a file" in settings.status[Channel.PUSH]
    assert settings.smtp is None and settings.fcm is None


def test_username_without_password_is_incomplete() -> None:
    settings = load_channel_settings({"SMTP_HOST": "h", "SMTP_FROM": "f", "SMTP_USERNAME": "u"})
    assert settings.status[Channel.EMAIL] == "not configured: missing SMTP_PASSWORD"


def test_secrets_never_appear_in_repr_or_str(credentials_file: Path) -> None:
    settings = load_channel_settings(full_env(credentials_file))

    for text in (repr(settings), str(settings), repr(settings.smtp), repr(settings.twilio)):
        assert "smtp-secret-value" not in text
        assert "twilio-secret-value" not in text
    assert settings.twilio is not None
    assert settings.twilio.auth_token.reveal() == "twilio-secret-value"
    assert str(Secret("x")) == "Secret('**********')"
