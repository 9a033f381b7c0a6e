"""Message templates: shipped coverage, rendering, handoff context, load-time errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniconsole.domain.messages import Handoff, Recipient
from omniconsole.domain.templates import TemplateError, handoff_phrase, load_templates

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "templates"

#: SPEC §5: journey → step → channels in order of preference (in_app included).
SHIPPED_STEPS = {
    ("onboarding", "welcome"): ["email", "in_app"],
    ("onboarding", "first_login"): ["in_app"],
    ("onboarding", "nudge_day3"): ["whatsapp", "push", "sms", "email"],
    ("onboarding", "nudge_day7"): ["sms", "email"],
    ("order_confirmation", "receipt"): ["email", "sms"],
    ("fraud_alert", "alert"): ["sms", "push", "email"],
    ("product_recommendation", "recommend"): ["whatsapp", "push", "email"],
    ("price_drop", "alert"): ["push", "whatsapp", "email"],
}

ANA = Recipient(customer="c-1", email="ana@example.com", first_name="Ana")
CLICKED_EMAIL = Handoff(channel="email", action="clicked", at="2026-01-05T10:00:00Z")


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("journey_step", "channels"), SHIPPED_STEPS.items())
def test_every_shipped_step_renders_on_each_of_its_channels(
    journey_step: tuple[str, str], channels: list[str]
) -> None:
    templates = load_templates(SHIPPED)
    journey, step = journey_step
    for channel in channels:
        for handoff in (None, CLICKED_EMAIL):
            subject, text, _ = templates.render(journey, step, channel, ANA, handoff, {})
            assert text.strip(), (journey, step, channel)
            assert "$" not in text.replace("$20", "")
            if channel == "email":
                assert subject.strip()


def test_welcome_email_greets_by_name_with_html() -> None:
    rendered = load_templates(SHIPPED).render("onboarding", "welcome", "email", ANA)
    assert rendered.subject == "Welcome aboard, Ana!"
    assert rendered.text.startswith("Hi Ana,")
    assert rendered.html is not None and rendered.html.startswith("<p>Hi Ana,</p>")


def test_first_name_falls_back_to_there() -> None:
    rendered = load_templates(SHIPPED).render(
        "onboarding", "welcome", "email", Recipient(customer="c-9")
    )
    assert rendered.subject == "Welcome aboard, there!"


def test_handoff_sends_say_what_the_customer_did() -> None:
    templates = load_templates(SHIPPED)
    plain = templates.render("onboarding", "nudge_day3", "sms", ANA)
    handoff = templates.render("onboarding", "nudge_day3", "sms", ANA, CLICKED_EMAIL)
    assert "you clicked a link in our email" not in plain.text
    assert "since you clicked a link in our email" in handoff.text


@pytest.mark.parametrize(
    ("channel", "action", "phrase"),
    [
        ("email", "clicked", "you clicked a link in our email"),
        ("email", "opened", "you opened our email"),
        ("whatsapp", "replied", "you replied to our WhatsApp message"),
        ("sms", "replied", "you replied to our text message"),
    ],
)
def test_handoff_phrase(channel: str, action: str, phrase: str) -> None:
    assert handoff_phrase(Handoff(channel, action, "2026-01-05T10:00:00Z")) == phrase


def test_event_properties_fill_placeholders_and_defaults_cover_gaps() -> None:
    templates = load_templates(SHIPPED)
    with_props = templates.render(
        "price_drop", "alert", "whatsapp", ANA, None, {"product_name": "Boots", "price": "$20"}
    )
    without = templates.render("price_drop", "alert", "whatsapp", ANA, None, {})
    assert with_props.text.startswith("Good news, Ana: Boots is now $20.")
    assert without.text.startswith("Good news, Ana: an item you viewed is now a lower price.")


def test_channel_without_own_table_uses_default(tmp_path: Path) -> None:
    write(
        tmp_path,
        "j.toml",
        '[s.default]\nsubject = "S"\ntext = "default ${channel}"\n[s.sms]\ntext = "sms only"\n',
    )
    templates = load_templates(tmp_path)
    assert templates.render("j", "s", "push", ANA).text == "default push"
    assert templates.render("j", "s", "sms", ANA).text == "sms only"


def test_html_values_are_escaped(tmp_path: Path) -> None:
    write(
        tmp_path,
        "j.toml",
        '[s.email]\nsubject = "${first_name}"\ntext = "t"\nhtml = "<b>${first_name}</b>"\n',
    )
    evil = Recipient(customer="c", first_name="<script>")
    rendered = load_templates(tmp_path).render("j", "s", "email", evil)
    assert rendered.html == "<b>&lt;script&gt;</b>"
    assert rendered.subject == "<script>"


def test_unknown_variable_fails_at_load_naming_file_key_and_allowed(tmp_path: Path) -> None:
    write(
        tmp_path, "onboarding.toml", '[welcome.email]\nsubject = "Hi ${frist_name}"\ntext = "t"\n'
    )
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    message = str(caught.value)
    assert "onboarding.toml" in message
    assert "[welcome.email] subject" in message
    assert "${frist_name}" in message
    assert "allowed: channel, customer, email, first_name, journey, step" in message


def test_handoff_variables_only_in_handoff_tables(tmp_path: Path) -> None:
    write(tmp_path, "j.toml", '[s.sms]\ntext = "since ${handoff_phrase}"\n')
    with pytest.raises(TemplateError, match=r"unknown variable \$\{handoff_phrase\}"):
        load_templates(tmp_path)


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[s.pager]\ntext = "t"\n', "is not a channel"),
        ('[s.email]\ntext = "t"\n', "subject is required for email"),
        ('[s.sms]\nsubject = "x"\n', "text is required"),
        ('[s.sms]\ntext = "t"\nbody = "b"\n', "unknown key(s) body"),
        ('[s.sms]\ntext = "cost $ 5"\n', "malformed placeholder"),
        ("[s]\nproperties = { first_name = 'x' }\n[s.sms]\ntext = 't'\n", "shadow"),
        ("[s.sms\n", "not valid TOML"),
    ],
)
def test_malformed_templates_fail_clearly(tmp_path: Path, toml: str, error: str) -> None:
    write(tmp_path, "j.toml", toml)
    with pytest.raises(TemplateError, match=r"j\.toml") as caught:
        load_templates(tmp_path)
    assert error in str(caught.value)


def test_missing_step_is_a_render_error() -> None:
    with pytest.raises(TemplateError, match=r"no templates for onboarding\.nope"):
        load_templates(SHIPPED).render("onboarding", "nope", "email", ANA)


def test_a_receipt_without_an_order_id_never_renders_a_gap() -> None:
    """'Your order  is confirmed' was a missing variable rendered empty."""
    templates = load_templates(SHIPPED)
    for properties in ({}, {"order_id": ""}, {"order_id": "   "}, {"order_id": None}):
        for channel in ("email", "sms"):
            rendered = templates.render("order_confirmation", "receipt", channel, ANA, None,
                                        properties)  # fmt: skip
            for text in (rendered.subject, rendered.text):
                assert "  " not in text.replace("\n\n", "\n"), (properties, channel, text)
                assert " ." not in text and " is confirmed" in rendered.subject


def test_a_used_property_with_an_empty_default_fails_at_load_naming_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        "j.toml",
        '[s]\nproperties = { order_id = "" }\n[s.email]\nsubject = "Order ${order_id}"\n'
        'text = "t"\n',
    )
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    assert "[s.email] subject uses ${order_id}" in str(caught.value)
    assert "default" in str(caught.value)


def test_an_unused_property_may_have_an_empty_default(tmp_path: Path) -> None:
    write(tmp_path, "j.toml", '[s]\nproperties = { sku = "" }\n[s.sms]\ntext = "t"\n')
    assert load_templates(tmp_path).render("j", "s", "sms", ANA).text == "t"
