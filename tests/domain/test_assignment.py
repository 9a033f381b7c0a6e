"""Who is held out and who gets which variant: stable, monotonic, independent of the process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from omniconsole.domain.assignment import (
    HOLDOUT_GLOBAL,
    HOLDOUT_JOURNEY,
    Assigner,
    journey_arm,
    unit,
)
from omniconsole.domain.channels import Category
from omniconsole.domain.config import EngineConfig, JourneyDef, load_config, shipped_config_dir
from omniconsole.domain.experiments import BASE_VARIANT, ControlGroup, VariantDef

SHIPPED: EngineConfig = load_config(shipped_config_dir())
EXAMPLE: EngineConfig = load_config(shipped_config_dir() / "examples" / "holdouts")
ONBOARDING: JourneyDef = next(j for j in SHIPPED.journeys if j.name == "onboarding")
RECEIPT: JourneyDef = next(j for j in SHIPPED.journeys if j.name == "order_confirmation")

customers = st.text(min_size=1, max_size=30)
shares = st.floats(0.0, 0.999, allow_nan=False)


def with_holdout(share: float, salt: str = "holdout") -> JourneyDef:
    return replace(ONBOARDING, holdout=ControlGroup(share, salt))


@given(customers, shares, shares)
def test_raising_the_holdout_share_only_moves_customers_into_control(
    customer: str, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    if journey_arm(customer, with_holdout(low), None) == HOLDOUT_JOURNEY:
        assert journey_arm(customer, with_holdout(high), None) == HOLDOUT_JOURNEY


@given(customers, shares, shares)
def test_raising_the_global_share_only_moves_customers_into_the_global_group(
    customer: str, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    if journey_arm(customer, ONBOARDING, ControlGroup(low, "g")) == HOLDOUT_GLOBAL:
        assert journey_arm(customer, ONBOARDING, ControlGroup(high, "g")) == HOLDOUT_GLOBAL


@given(customers, shares, shares)
def test_a_treated_customer_keeps_their_variant_whatever_the_control_share(
    customer: str, a: float, b: float
) -> None:
    variants = (VariantDef("b", 0.3), VariantDef("c", 0.3))
    first = journey_arm(customer, replace(with_holdout(a), variants=variants), None)
    second = journey_arm(customer, replace(with_holdout(b), variants=variants), None)
    if first != HOLDOUT_JOURNEY and second != HOLDOUT_JOURNEY:
        assert first == second


def test_the_shares_are_the_shares_of_customers_who_land_there() -> None:
    journey = replace(with_holdout(0.1), variants=(VariantDef("b", 0.25),))
    arms = [journey_arm(f"c-{n:06d}", journey, ControlGroup(0.05, "g")) for n in range(40_000)]
    total = len(arms)
    assert abs(arms.count(HOLDOUT_GLOBAL) / total - 0.05) < 0.005
    # the journey's holdout is drawn among those not in the global group
    assert abs(arms.count(HOLDOUT_JOURNEY) / total - 0.95 * 0.1) < 0.006
    treated = total - arms.count(HOLDOUT_GLOBAL) - arms.count(HOLDOUT_JOURNEY)
    assert abs(arms.count("b") / treated - 0.25) < 0.01
    assert arms.count("b") + arms.count(BASE_VARIANT) == treated


def test_a_new_salt_draws_a_different_control_group() -> None:
    people = [f"c-{n}" for n in range(2000)]
    first = {c for c in people if journey_arm(c, with_holdout(0.2, "2026-q1"), None)}
    second = {c for c in people if journey_arm(c, with_holdout(0.2, "2026-q2"), None)}
    assert first and second and first != second


def test_transactional_journeys_are_never_held_out_even_from_the_global_group() -> None:
    everyone = ControlGroup(0.999, "g")
    assert all(journey_arm(f"c-{n}", RECEIPT, everyone) is None for n in range(200))


def test_the_global_group_wins_over_the_journeys_own_holdout() -> None:
    journey = with_holdout(0.999)
    arms = {journey_arm(f"c-{n}", journey, ControlGroup(0.5, "g")) for n in range(200)}
    assert arms == {HOLDOUT_GLOBAL, HOLDOUT_JOURNEY}


def test_the_draw_is_the_same_in_another_process_with_another_hash_seed() -> None:
    people = [f"c-{n:06d}" for n in range(50)] + ["ana@example.com", "ünïcode"]
    here = [repr(unit("holdout", "salt", "onboarding", c)) for c in people]
    script = (
        "import sys; from omniconsole.domain.assignment import unit; "
        "print('\\n'.join(repr(unit('holdout', 'salt', 'onboarding', c)) "
        "for c in sys.argv[1:]))"
    )
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script, *people],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == here


def test_the_shipped_config_has_no_experiment_so_nothing_draws_an_arm() -> None:
    assert not Assigner(SHIPPED).active


def test_the_example_config_holds_out_onboarding_and_price_drop_but_not_receipts() -> None:
    assigner = Assigner(EXAMPLE)
    assert {"onboarding", "price_drop", "product_recommendation"} <= set(assigner.journeys)
    assert not {"order_confirmation", "fraud_alert"} & set(assigner.journeys)
    b = assigner.arm("onboarding", "b")
    assert b is not None and b.variant == "b" and b.templates == {"nudge_day3": "nudge_day3_b"}
    held = assigner.arm("onboarding", HOLDOUT_JOURNEY)
    assert held is not None and held.held_out and held.variant is None
    assert EXAMPLE.policy.global_control is not None
    assert all(
        j.category is not Category.TRANSACTIONAL or j.holdout is None for j in EXAMPLE.journeys
    )
