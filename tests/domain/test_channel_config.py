"""The channel-intelligence keys of the config (docs/channels.md): the example folder
loads and round-trips; each mistake refuses with one message naming file and key; the
shipped config turns none of it on.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from omniconsole.domain.channel_config import ChannelPolicy
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import (
    ConfigError,
    EngineConfig,
    JourneyDef,
    Policy,
    load_config,
    shipped_config_dir,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"


@pytest.fixture(scope="module")
def example() -> EngineConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable copy of the example folder."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in {path.name}"
    path.write_text(text.replace(old, new))


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return str(info.value)


def test_the_shipped_config_turns_no_channel_rule_on() -> None:
    shipped = load_config(shipped_config_dir())
    assert shipped.policy.channel_policy is None
    assert all(j.topic is None for j in shipped.journeys)
    assert all(s.choice is None for j in shipped.journeys for s in j.steps)


def test_the_example_config_turns_every_rule_on(example: EngineConfig) -> None:
    chan = example.policy.channel_policy
    assert chan is not None and chan.engagement is not None and chan.tracking is not None
    assert chan.block_mode(Category.PROMOTIONAL) == "switch"
    assert chan.block_mode(Category.LIFECYCLE) is None
    assert {t.name for t in chan.topics} == {
        "account",
        "getting_started",
        "deals",
        "recommendations",
    }
    recs = chan.topic("recommendations")
    assert recs is not None and recs.default_off == {Channel.WHATSAPP}
    steps = {(j.name, s.name): s.choice for j in example.journeys for s in j.steps}
    alert = steps[("price_drop", "alert")]
    assert alert is not None and alert.select == "affinity" and alert.digest == timedelta(hours=6)
    day7 = steps[("onboarding", "nudge_day7")]
    assert (
        day7 is not None and day7.send_at == "best_hour" and day7.max_delay == timedelta(hours=24)
    )


def test_the_example_policy_round_trips_through_the_form_the_store_keeps(
    example: EngineConfig,
) -> None:
    policy = example.policy
    assert Policy.from_json(orjson.loads(orjson.dumps(policy.to_json()))) == policy


def test_every_example_journey_round_trips_through_the_form_the_store_keeps(
    example: EngineConfig,
) -> None:
    for journey in example.journeys:
        stored = orjson.loads(orjson.dumps(journey.to_json()))
        assert JourneyDef.from_json(stored, journey.source) == journey


def test_an_unknown_on_block_mode_is_refused_naming_the_key(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'promotional = "switch"', 'promotional = "retry"')
    message = refusal(config_dir)
    assert "policy.toml: key 'on_block.promotional'" in message
    assert "defer, suppress, switch" in message


def test_on_block_for_transactional_messages_is_refused(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'promotional = "switch"', 'transactional = "switch"')
    assert "key 'on_block.transactional': unknown key" in refusal(config_dir)


def test_a_digest_on_a_lifecycle_step_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys" / "onboarding.toml", 'max_delay = "24h"', 'digest = "6h"')
    message = refusal(config_dir)
    assert "onboarding.toml: key 'step[3].digest'" in message
    assert "only promotional steps" in message


def test_max_delay_without_a_send_time_is_refused(config_dir: Path) -> None:
    edit(
        config_dir / "journeys" / "price_drop.toml",
        'digest = "6h"',
        'digest = "6h"\nmax_delay = "2h"',
    )
    assert "price_drop.toml: key 'step[0].max_delay': only with send_at" in refusal(config_dir)


def test_affinity_without_an_engagement_table_is_refused(config_dir: Path) -> None:
    text = (config_dir / "policy.toml").read_text()
    start = text.index("[engagement]")
    end = text.index("[on_block]")
    (config_dir / "policy.toml").write_text(text[:start] + text[end:])
    message = refusal(config_dir)
    assert "key 'step[" in message and "needs an [engagement] table" in message


def test_a_journey_naming_an_unknown_topic_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys" / "price_drop.toml", 'topic = "deals"', 'topic = "dealz"')
    message = refusal(config_dir)
    assert "price_drop.toml: key 'topic': unknown topic 'dealz'" in message
    assert "deals" in message


def test_a_topic_mixing_transactional_and_marketing_journeys_is_refused(config_dir: Path) -> None:
    edit(config_dir / "journeys" / "price_drop.toml", 'topic = "deals"', 'topic = "account"')
    message = refusal(config_dir)
    assert "key 'topic'" in message and "transactional topic cannot be turned off" in message


def test_population_rates_must_name_channels(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", "email = 0.20,", "mail = 0.20,")
    assert "key 'engagement.population.mail': not a channel" in refusal(config_dir)


def test_a_population_hour_outside_the_day_is_refused(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", "population_hour = 18", "population_hour = 24")
    assert "key 'engagement.population_hour': must be a whole hour 0-23" in refusal(config_dir)


def test_a_topic_defined_twice_is_refused(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'name = "deals"', 'name = "account"')
    assert "topic 'account' is defined twice" in refusal(config_dir)


def test_a_policy_with_only_topics_leaves_the_other_rules_off() -> None:
    table = load_config(shipped_config_dir()).policy.to_json()
    table["topic"] = [{"name": "news", "label": "News"}]
    chan = Policy.from_json(table).channel_policy
    assert chan == ChannelPolicy(topics=chan.topics if chan else ())
    assert chan is not None and chan.engagement is None and chan.on_block == ()
