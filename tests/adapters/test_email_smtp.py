"""SmtpEmailAdapter against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from peers import LoopbackController, SmtpRecorder, free_port

from omniconsole.adapters.channels.email_smtp import SmtpEmailAdapter, message_id_header
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.adapters.channels.settings import SmtpSettings
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import OutboundMessage, Recipient
from omniconsole.domain.unsubscribe import link_token

PUBLIC_URL = "https://omni.example.com"


def make_message(category: Category = Category.LIFECYCLE, **overrides: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "message_id": "m:c-1/onboarding/welcome#1",
        "channel": Channel.EMAIL,
        "category": category,
        "journey": "onboarding",
        "step": "welcome",
        "recipient": Recipient(customer="c-1", email="ana@example.com", first_name="Ana"),
        "subject": "Welcome aboard, Ana!",
        "text": "Hi Ana, welcome.",
        "html": "<p>Hi Ana, welcome.</p>",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def settings_for(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1", port=port, from_addr="Omni <hello@omni.example.com>", starttls=False
    )


class Sleeps:
    """An injectable sleep that records delays and can run a hook instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hooks: list[object] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.hooks:
            hook = self.hooks.pop(0)
            await hook()  # type: ignore[operator]


def delivered(recorder: SmtpRecorder) -> EmailMessage:
    assert len(recorder.envelopes) == 1
    raw = recorder.envelopes[0].content
    assert isinstance(raw, bytes)
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.asyncio
async def test_delivers_multipart_alternative_with_headers(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port), public_url=PUBLIC_URL)
    result = await adapter.send(make_message())
    await adapter.aclose()

    assert result.ok
    mail = delivered(smtp_recorder)
    assert smtp_recorder.envelopes[0].rcpt_tos == ["ana@example.com"]
    assert smtp_recorder.envelopes[0].mail_from == "hello@omni.example.com"
    assert mail["To"] == "ana@example.com"
    assert mail["From"] == "Omni <hello@omni.example.com>"
    assert mail["Subject"] == "Welcome aboard, Ana!"
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in mail.iter_parts()}
    assert parts["text/plain"].strip() == "Hi Ana, welcome."
    assert parts["text/html"].strip() == "<p>Hi Ana, welcome.</p>"


@pytest.mark.asyncio
async def test_message_id_is_derived_from_the_message_id(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port))
    message = make_message()
    result = await adapter.send(message)

    mail = delivered(smtp_recorder)
    assert mail["Message-ID"] == message_id_header(message.message_id)
    assert mail["Message-ID"] == "<m=3Ac-1/onboarding/welcome#1@omniconsole>"
    assert result.provider_id == mail["Message-ID"]


def test_message_id_escaping_keeps_distinct_ids_distinct() -> None:
    assert message_id_header("a:b") != message_id_header("a=3Ab")
    assert message_id_header("a..b") == "<a=2E=2Eb@omniconsole>"


@pytest.mark.asyncio
@pytest.mark.parametrize("category", [Category.LIFECYCLE, Category.PROMOTIONAL])
async def test_marketing_mail_carries_one_click_unsubscribe(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder, category: Category
) -> None:
    adapter = SmtpEmailAdapter(
        settings_for(smtp_server.port), public_url=PUBLIC_URL, link_secret="s3cret"
    )
    assert (await adapter.send(make_message(category))).ok

    raw = smtp_recorder.envelopes[0].content
    # the URL stays a plain header a mail client can follow, not an RFC 2047 word
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0]
    mail = delivered(smtp_recorder)
    unsubscribe = mail["List-Unsubscribe"]
    assert f"<{PUBLIC_URL}/unsubscribe?customer=c-1&channel=email&message_id=" in unsubscribe
    token = link_token("s3cret", "c-1", "email", "m:c-1/onboarding/welcome#1")
    assert f"&token={token}>" in unsubscribe
    assert "<mailto:hello@omni.example.com?subject=unsubscribe%20c-1>" in unsubscribe
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.asyncio
async def test_without_public_url_only_mailto_and_no_one_click(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port))
    assert (await adapter.send(make_message())).ok

    mail = delivered(smtp_recorder)
    assert mail["List-Unsubscribe"] == "<mailto:hello@omni.example.com?subject=unsubscribe%20c-1>"
    assert mail["List-Unsubscribe-Post"] is None


@pytest.mark.asyncio
async def test_transactional_mail_has_no_unsubscribe_headers(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port), public_url=PUBLIC_URL)
    assert (await adapter.send(make_message(Category.TRANSACTIONAL, html=None))).ok

    mail = delivered(smtp_recorder)
    assert mail["List-Unsubscribe"] is None
    assert mail["List-Unsubscribe-Post"] is None
    assert mail.get_content_type() == "text/plain"


@pytest.mark.asyncio
async def test_retries_until_the_server_comes_back() -> None:
    recorder = SmtpRecorder()
    port = free_port()
    controller = LoopbackController(recorder, hostname="127.0.0.1", port=port)
    sleeps = Sleeps()

    async def start_server() -> None:
        await asyncio.to_thread(controller.start)

    sleeps.hooks.append(start_server)
    adapter = SmtpEmailAdapter(settings_for(port), sleep=sleeps, rand=lambda: 1.0)
    try:
        result = await adapter.send(make_message())
    finally:
        await asyncio.to_thread(controller.stop)

    assert result.ok
    assert sleeps.delays == [0.5]  # one failed attempt, full-jitter ceiling base_delay
    assert len(recorder.envelopes) == 1


@pytest.mark.asyncio
async def test_5xx_reply_is_permanent_and_not_retried(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    smtp_recorder.refuse["ana@example.com"] = ["550 5.1.1 No such user"]
    sleeps = Sleeps()
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port), sleep=sleeps)
    result = await adapter.send(make_message())

    assert not result.ok
    assert result.permanent
    assert result.error_code == "smtp_550"
    assert sleeps.delays == []
    assert smtp_recorder.envelopes == []


@pytest.mark.asyncio
async def test_4xx_reply_is_retried(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    smtp_recorder.refuse["ana@example.com"] = ["451 4.3.0 Try again later"]
    sleeps = Sleeps()
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port), sleep=sleeps, rand=lambda: 0.0)
    result = await adapter.send(make_message())

    assert result.ok
    assert sleeps.delays == [0.0]
    assert len(smtp_recorder.envelopes) == 1


@pytest.mark.asyncio
async def test_down_server_fails_after_all_attempts_and_opens_the_breaker() -> None:
    sleeps = Sleeps()
    adapter = SmtpEmailAdapter(
        settings_for(free_port()), sleep=sleeps, retry=RetryPolicy(attempts=3)
    )
    result = await adapter.send(make_message())

    assert not result.ok and not result.permanent
    assert result.error_code == "connection"
    assert len(sleeps.delays) == 2
    assert adapter.health() == {Channel.EMAIL: "degraded"}


@pytest.mark.asyncio
async def test_crlf_in_customer_data_is_cleaned_out_of_the_headers_not_a_lost_email(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder
) -> None:
    """A name typed with a line break, an address pasted with one: the receipt still goes,
    on one header line each, and no header can be injected."""
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port))
    message = make_message(
        Category.TRANSACTIONAL,
        recipient=Recipient(customer="c-1", email=" ana@example.com\r\n", first_name="Ana"),
        subject="Welcome aboard, Ana\r\nBcc: evil@example.com",
    )
    result = await adapter.send(message)
    assert result.ok, result
    mail = delivered(smtp_recorder)
    assert smtp_recorder.envelopes[0].rcpt_tos == ["ana@example.com"]
    assert mail["Subject"] == "Welcome aboard, Ana Bcc: evil@example.com"
    assert mail["Bcc"] is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "address", ["ana@example.com\r\nBcc: evil@example.com", "not an address", " "]
)
async def test_an_email_trait_that_is_no_address_is_a_permanent_failure_not_an_exception(
    smtp_server: LoopbackController, smtp_recorder: SmtpRecorder, address: str
) -> None:
    adapter = SmtpEmailAdapter(settings_for(smtp_server.port))
    message = make_message(recipient=Recipient(customer="c-1", email=address))
    result = await adapter.send(message)
    assert (result.ok, result.permanent) == (False, True)
    assert result.error_code in ("invalid_address", "no_address", "smtp_501", "smtp_553")
    assert smtp_recorder.envelopes == []
