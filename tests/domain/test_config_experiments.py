"""Control groups and variants in the config folder: what loads, and every mistake refused.

A refusal is one line naming the file and the key, like every other config mistake.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from omniconsole.domain.channels import Channel
from omniconsole.domain.config import (
    ConfigError,
    EngineConfig,
    JourneyDef,
    Policy,
    load_config,
    shipped_config_dir,
)
from omniconsole.domain.experiments import ControlGroup, StepOverride, VariantDef

EXAMPLE_DIR = shipped_config_dir() / "examples" / "holdouts"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped config folder."""
    target = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), target, ignore=shutil.ignore_patterns("examples"))
    return target


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text)


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    message = str(info.value)
    assert "\n" not in message.strip(), "one message, one line"
    return message


def test_the_example_config_declares_a_global_group_a_holdout_and_a_variant() -> None:
    config = load_config(EXAMPLE_DIR)
    assert config.policy.global_control == ControlGroup(0.05, "global-control")
    onboarding = next(j for j in config.journeys if j.name == "onboarding")
    assert onboarding.holdout == ControlGroup(0.1, "holdout")
    assert onboarding.variants == (
        VariantDef(
            "b",
            0.5,
            (StepOverride("nudge_day3", (Channel.EMAIL, Channel.PUSH), timedelta(hours=48),
                          "nudge_day3_b"),),
        ),
    )  # fmt: skip


def test_the_shipped_config_keeps_holdouts_off() -> None:
    config = load_config(shipped_config_dir())
    assert config.policy.global_control is None
    assert all(j.holdout is None and not j.variants for j in config.journeys)


def test_experiments_round_trip_through_the_form_the_store_keeps() -> None:
    config: EngineConfig = load_config(EXAMPLE_DIR)
    assert Policy.from_json(config.policy.to_json()) == config.policy
    for journey in config.journeys:
        assert JourneyDef.from_json(journey.to_json(), journey.source) == journey


def test_a_salt_left_out_takes_its_default(config_dir: Path) -> None:
    append(config_dir / "policy.toml", "[global_control]\nshare = 0.05\n")
    append(config_dir / "journeys" / "onboarding.toml", "[holdout]\nshare = 0.1\n")
    config = load_config(config_dir)
    assert config.policy.global_control == ControlGroup(0.05, "global-control")
    assert next(j for j in config.journeys if j.name == "onboarding").holdout == ControlGroup(
        0.1, "holdout"
    )


@pytest.mark.parametrize("share", ["1.0", "1", "-0.1", '"0.1"', "true"])
def test_a_holdout_share_outside_zero_to_one_is_refused(config_dir: Path, share: str) -> None:
    append(config_dir / "journeys" / "onboarding.toml", f"[holdout]\nshare = {share}\n")
    message = refusal(config_dir)
    assert "onboarding.toml: key 'holdout.share'" in message
    assert "0 <= share < 1" in message


def test_a_global_share_outside_zero_to_one_is_refused(config_dir: Path) -> None:
    append(config_dir / "policy.toml", "[global_control]\nshare = 2\n")
    assert "policy.toml: key 'global_control.share'" in refusal(config_dir)


def test_an_unknown_key_in_global_control_is_refused(config_dir: Path) -> None:
    append(config_dir / "policy.toml", "[global_control]\nshare = 0.1\npercent = 5\n")
    message = refusal(config_dir)
    assert "policy.toml: key 'global_control.percent': unknown key" in message
    assert "salt, share" in message


def test_a_holdout_on_a_transactional_journey_is_refused(config_dir: Path) -> None:
    append(config_dir / "journeys" / "order_confirmation.toml", "[holdout]\nshare = 0.1\n")
    message = refusal(config_dir)
    assert "order_confirmation.toml: key 'holdout'" in message
    assert "transactional journeys are never held out" in message


VARIANT_MISTAKES = [
    ('[[variant]]\nname = "b"\nshare = 0\n', "variant[0].share", "0 < share <= 1"),
    ('[[variant]]\nname = "base"\nshare = 0.5\n', "variant[0].name", "not 'base'"),
    ('[[variant]]\nname = "b c"\nshare = 0.5\n', "variant[0].name", "is not a variant name"),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant]]\nname = "b"\nshare = 0.2\n',
        "variant[1].name",
        "defined twice",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.6\n[[variant]]\nname = "c"\nshare = 0.6\n',
        "variant[1].share",
        "add up to more than 1",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant.step]]\nname = "nudge_day9"\n'
        'after = "48h"\n',
        "variant[0].step[0].name",
        "no step 'nudge_day9'",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant.step]]\nname = "first_login"\n'
        'after = "1h"\n',
        "variant[0].step[0].after",
        "comes due on_event",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant.step]]\nname = "welcome"\n'
        'channels = ["fax"]\n',
        "variant[0].step[0].channels",
        "unknown channel 'fax'",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant.step]]\nname = "welcome"\n',
        "variant[0].step[0].name",
        "override at least one of channels, after, template",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\n[[variant.step]]\nname = "welcome"\n'
        'after = "soon"\n',
        "variant[0].step[0].after",
        "bad duration",
    ),
    (
        '[[variant]]\nname = "b"\nshare = 0.5\ncolour = "red"\n',
        "variant[0].colour",
        "unknown key",
    ),
]


@pytest.mark.parametrize(("text", "key", "words"), VARIANT_MISTAKES)
def test_a_mistaken_variant_is_refused_naming_file_and_key(
    config_dir: Path, text: str, key: str, words: str
) -> None:
    append(config_dir / "journeys" / "onboarding.toml", text)
    message = refusal(config_dir)
    assert f"onboarding.toml: key '{key}'" in message
    assert words in message


def test_a_stored_journey_with_a_bad_share_is_refused_naming_the_key() -> None:
    journey = next(j for j in load_config(EXAMPLE_DIR).journeys if j.name == "onboarding")
    table = journey.to_json()
    table["holdout"]["share"] = 3
    with pytest.raises(ConfigError, match=r"journey \(stored\): key 'holdout.share'"):
        JourneyDef.from_json(table)


def test_the_example_is_the_shipped_config_plus_its_experiments() -> None:
    """The example must not drift from the shipped config it demonstrates."""
    from dataclasses import replace

    from omniconsole.domain.templates import load_templates

    shipped = load_config(shipped_config_dir())
    example = load_config(EXAMPLE_DIR)
    assert replace(example.policy, global_control=None) == shipped.policy
    plain = [replace(j, holdout=None, variants=()) for j in example.journeys]
    assert plain == list(shipped.journeys)
    shipped_templates = load_templates(shipped_config_dir() / "templates").journeys()
    example_templates = load_templates(EXAMPLE_DIR / "templates").journeys()
    assert example_templates["onboarding"] == sorted(
        [*shipped_templates["onboarding"], "nudge_day3_b"]
    )
    for name in shipped_templates:
        path = Path("templates") / f"{name}.toml"
        if name != "onboarding":
            assert (EXAMPLE_DIR / path).read_text() == (shipped_config_dir() / path).read_text()
