"""`generate --plant-lift`: extra conversions for treated customers only, nothing else moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omniconsole.domain.assignment import HELD_OUT_ARMS, journey_arm
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.generator import PlantedLift, generate_events, parse_plant_lift

EXAMPLE = load_config(shipped_config_dir() / "examples" / "holdouts")
ONBOARDING = next(j for j in EXAMPLE.journeys if j.name == "onboarding")
START = datetime(2026, 3, 2, tzinfo=UTC)


def events(plant: PlantedLift | None) -> list[dict[str, Any]]:
    return list(generate_events(3000, 14, 5, START, events_per_customer=4, plant=plant))


def test_planting_adds_activations_for_treated_customers_and_changes_nothing_else() -> None:
    plain = events(None)
    planted = events(PlantedLift(EXAMPLE, {"onboarding": 0.08}))
    extra = [e for e in planted if e.get("properties", {}).get("planted")]
    assert [e for e in planted if not e.get("properties", {}).get("planted")] == plain
    assert extra and all(e["event"] == "Activated" for e in extra)
    for event in extra:
        arm = journey_arm(event["userId"], ONBOARDING, EXAMPLE.policy.global_control)
        assert arm not in HELD_OUT_ARMS


def test_a_planted_activation_falls_within_the_journeys_lifetime_after_sign_up() -> None:
    planted = events(PlantedLift(EXAMPLE, {"onboarding": 0.2}))
    signed = {e["userId"]: e["timestamp"] for e in planted if e.get("event") == "Signed Up"}
    lifetime = ONBOARDING.lifetime
    assert lifetime is not None
    for event in planted:
        if event.get("properties", {}).get("planted"):
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
            since = datetime.fromisoformat(signed[event["userId"]].replace("Z", "+00:00"))
            assert timedelta(minutes=1) <= at - since < lifetime


def test_about_the_planted_share_of_the_treated_customers_get_a_planted_activation() -> None:
    planted = events(PlantedLift(EXAMPLE, {"onboarding": 0.1}))
    signed = {e["userId"] for e in planted if e.get("event") == "Signed Up"}
    treated = {
        c
        for c in signed
        if journey_arm(c, ONBOARDING, EXAMPLE.policy.global_control) not in HELD_OUT_ARMS
    }
    extra = {e["userId"] for e in planted if e.get("properties", {}).get("planted")}
    assert abs(len(extra) / len(treated) - 0.1) < 0.02


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["onboarding=0.08"], {"onboarding": 0.08}),
        (["a=0.1,b=0.2"], {"a": 0.1, "b": 0.2}),
        (["a=0.1", "b=0.2"], {"a": 0.1, "b": 0.2}),
    ],
)
def test_plant_lift_specs_are_read_as_journey_and_effect(
    specs: list[str], expected: dict[str, float]
) -> None:
    assert parse_plant_lift(specs) == expected
