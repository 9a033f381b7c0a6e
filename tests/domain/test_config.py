"""The config folder (SPEC §4, §5): the shipped one loads; every mistake refuses clearly.

A refusal is one `ConfigError` whose message names the file, the key and what is allowed,
so an operator can fix the file without reading code.
"""

from __future__ import annotations

import shutil
from datetime import time, timedelta
from pathlib import Path

import orjson
import pytest

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import (
    ConfigError,
    EngineConfig,
    JourneyDef,
    Policy,
    load_config,
    shipped_config_dir,
)


@pytest.fixture(scope="module")
def shipped() -> EngineConfig:
    return load_config(shipped_config_dir())


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped config folder."""
    target = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of `old` in `path`."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in {path.name}"
    path.write_text(text.replace(old, new))


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    message = str(info.value)
    assert "\n" not in message.strip(), "one message, one line"
    return message


# ---- the shipped config ----


def test_shipped_config_has_the_five_journeys(shipped: EngineConfig) -> None:
    assert sorted(j.name for j in shipped.journeys) == [
        "fraud_alert",
        "onboarding",
        "order_confirmation",
        "price_drop",
        "product_recommendation",
    ]


def test_shipped_journeys_match_the_spec_table(shipped: EngineConfig) -> None:
    journeys = {j.name: j for j in shipped.journeys}
    table = {
        "onboarding": (Category.LIFECYCLE, "Signed Up", "once"),
        "order_confirmation": (Category.TRANSACTIONAL, "Order Completed", "every"),
        "fraud_alert": (Category.TRANSACTIONAL, "Fraud Suspected", "every"),
        "product_recommendation": (Category.PROMOTIONAL, "Product Viewed", "one_live"),
        "price_drop": (Category.PROMOTIONAL, "Price Dropped", "every"),
    }
    for name, (category, event, rule) in table.items():
        assert (journeys[name].category, journeys[name].entry_event, journeys[name].entry) == (
            category,
            event,
            rule,
        )
    onboarding = journeys["onboarding"]
    assert onboarding.lifetime == timedelta(days=14)
    assert onboarding.goal_event == "Activated"
    assert [(s.name, s.after, s.on_event) for s in onboarding.steps] == [
        ("welcome", timedelta(0), None),
        ("first_login", None, "Logged In"),
        ("nudge_day3", timedelta(hours=72), None),
        ("nudge_day7", timedelta(hours=168), None),
    ]
    assert onboarding.step("nudge_day3").channels == (
        Channel.WHATSAPP,
        Channel.PUSH,
        Channel.SMS,
        Channel.EMAIL,
    )
    recommend = journeys["product_recommendation"].step("recommend")
    assert recommend.after == timedelta(hours=24)
    assert recommend.unless_since_entry == ("Order Completed",)


def test_shipped_policy_has_the_spec_numbers(shipped: EngineConfig) -> None:
    policy = shipped.policy
    assert policy.capped_categories == {Category.LIFECYCLE, Category.PROMOTIONAL}
    assert policy.uncapped_channels == {Channel.IN_APP}
    caps = {(c.scope, c.window, c.limit) for c in policy.caps}
    assert caps == {
        ("all", timedelta(hours=24), 2),
        ("all", timedelta(days=7), 5),
        ("sms", timedelta(hours=24), 1),
        ("whatsapp", timedelta(hours=24), 1),
    }
    assert sorted(c.reason for c in policy.caps) == [
        "cap:all:24h",
        "cap:all:7d",
        "cap:sms:24h",
        "cap:whatsapp:24h",
    ]
    quiet = policy.quiet_hours
    assert quiet is not None
    assert (quiet.start, quiet.end) == (time(21, 0), time(8, 0))
    assert quiet.channels == {Channel.SMS, Channel.WHATSAPP, Channel.RCS, Channel.PUSH}
    assert quiet.categories == {Category.LIFECYCLE, Category.PROMOTIONAL}
    [support] = policy.suppressions
    assert support.after_event == "Support Ticket Opened"
    assert support.window == timedelta(hours=48)
    assert support.categories == {Category.PROMOTIONAL}
    assert support.reason == "suppression:support_ticket"
    assert policy.max_deferral == timedelta(hours=48)


# ---- every kind of mistake ----


def test_unknown_journey_key_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/price_drop.toml", 'category = "promotional"', 'categry = "x"')
    message = refusal(config_dir)
    assert "price_drop.toml" in message
    assert "'categry'" in message
    assert "category" in message and "entry" in message and "step" in message


def test_bad_duration_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/onboarding.toml", 'after = "72h"', 'after = "3 days"')
    message = refusal(config_dir)
    assert "onboarding.toml" in message
    assert "step[2].after" in message
    assert "3 days" in message
    assert "72h" in message or "s, m, h, d, w" in message


def test_bad_policy_duration_is_refused(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'max_after_due = "48h"', 'max_after_due = "2 days"')
    message = refusal(config_dir)
    assert "policy.toml" in message
    assert "max_after_due" in message
    assert "2 days" in message


def test_unknown_channel_is_refused(config_dir: Path) -> None:
    edit(
        config_dir / "journeys/fraud_alert.toml",
        'channels = ["sms", "push", "email"]',
        'channels = ["sms", "pager", "email"]',
    )
    message = refusal(config_dir)
    assert "fraud_alert.toml" in message
    assert "step[0].channels" in message
    assert "pager" in message
    for channel in Channel:
        assert channel.value in message


def test_unknown_channel_in_policy_is_refused(config_dir: Path) -> None:
    edit(
        config_dir / "policy.toml", 'uncapped_channels = ["in_app"]', 'uncapped_channels = ["fax"]'
    )
    message = refusal(config_dir)
    assert "policy.toml" in message and "uncapped_channels" in message and "fax" in message
    assert "in_app" in message


def test_unknown_category_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/price_drop.toml", 'category = "promotional"', 'category = "ads"')
    message = refusal(config_dir)
    assert "price_drop.toml" in message and "'category'" in message and "ads" in message
    for category in Category:
        assert category.value in message


def test_unknown_entry_rule_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/price_drop.toml", 'rule = "every"', 'rule = "always"')
    message = refusal(config_dir)
    assert "price_drop.toml" in message and "entry.rule" in message and "always" in message
    for rule in ("once", "every", "one_live"):
        assert rule in message


def test_step_with_both_after_and_on_event_is_refused(config_dir: Path) -> None:
    edit(
        config_dir / "journeys/onboarding.toml",
        'on_event = "Logged In"',
        'on_event = "Logged In"\nafter = "1h"',
    )
    message = refusal(config_dir)
    assert "onboarding.toml" in message and "step[1]" in message
    assert "after" in message and "on_event" in message


def test_step_with_neither_after_nor_on_event_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/price_drop.toml", 'after = "0h"\n', "")
    message = refusal(config_dir)
    assert "price_drop.toml" in message and "step[0]" in message
    assert "after" in message and "on_event" in message


def test_duplicate_step_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/onboarding.toml", 'name = "nudge_day7"', 'name = "nudge_day3"')
    message = refusal(config_dir)
    assert "onboarding.toml" in message and "step[3].name" in message
    assert "nudge_day3" in message and "twice" in message


def test_duplicate_journey_name_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys/price_drop.toml", 'name = "price_drop"', 'name = "fraud_alert"')
    message = refusal(config_dir)
    assert "price_drop.toml" in message and "fraud_alert" in message and "twice" in message


def test_missing_policy_file_is_refused(config_dir: Path) -> None:
    (config_dir / "policy.toml").unlink()
    message = refusal(config_dir)
    assert "policy.toml" in message and "not found" in message


def test_invalid_toml_is_refused(config_dir: Path) -> None:
    path = config_dir / "journeys/order_confirmation.toml"
    path.write_text(path.read_text() + "\n[[step]\nname = \n")
    message = refusal(config_dir)
    assert "order_confirmation.toml" in message and "TOML" in message


def test_invalid_policy_toml_is_refused(config_dir: Path) -> None:
    (config_dir / "policy.toml").write_text("capped_categories = [lifecycle\n")
    message = refusal(config_dir)
    assert "policy.toml" in message and "TOML" in message


def test_unknown_policy_key_is_refused(config_dir: Path) -> None:
    path = config_dir / "policy.toml"
    path.write_text("quiet_hour = 3\n" + path.read_text())
    message = refusal(config_dir)
    assert "policy.toml" in message and "'quiet_hour'" in message and "quiet_hours" in message


def test_bad_cap_scope_is_refused(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'scope = "sms"', 'scope = "text"')
    message = refusal(config_dir)
    assert "policy.toml" in message and "cap[2].scope" in message and "text" in message
    assert "all" in message and "whatsapp" in message


def test_folder_without_journeys_is_refused(config_dir: Path) -> None:
    shutil.rmtree(config_dir / "journeys")
    message = refusal(config_dir)
    assert "journeys" in message


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nowhere")
    assert "nowhere" in message and "not found" in message


def test_edited_copy_is_what_loads(config_dir: Path) -> None:
    """A valid edit takes effect: the folder given is the folder read."""
    edit(config_dir / "policy.toml", "limit = 2", "limit = 3")
    policy = load_config(config_dir).policy
    assert ("all", timedelta(hours=24), 3) in {(c.scope, c.window, c.limit) for c in policy.caps}


def test_the_policy_round_trips_through_the_form_the_store_keeps(shipped: EngineConfig) -> None:
    """The store keeps the policy as `to_json`; reading it back gives the same rules."""
    policy = shipped.policy
    assert Policy.from_json(orjson.loads(orjson.dumps(policy.to_json()))) == policy


def test_every_shipped_journey_round_trips_through_the_form_the_store_keeps(
    shipped: EngineConfig,
) -> None:
    for journey in shipped.journeys:
        stored = orjson.loads(orjson.dumps(journey.to_json()))
        again = JourneyDef.from_json(stored, journey.source)
        assert again == journey


def test_a_stored_policy_with_a_mistake_is_refused_naming_the_key(shipped: EngineConfig) -> None:
    table = shipped.policy.to_json()
    table["cap"][0]["window"] = "a day"
    with pytest.raises(ConfigError, match=r"policy \(stored\): key 'cap\[0\].window'"):
        Policy.from_json(table)
