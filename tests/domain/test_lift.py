"""The lift's confidence interval: Newcombe's hybrid score method, against published values.

The worked examples are Newcombe (1998), Statistics in Medicine 17:873-890, Table II,
method 10 (the same values are checked by R's `ratesci` and `contingencytables`).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniconsole.domain.lift import Rate, lift, newcombe_interval, wilson_interval

# (treatment converted, entered, control converted, entered) -> (difference, low, high)
PUBLISHED = [
    ((56, 70, 48, 80), (0.2, 0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.6, 0.1705, 0.8090)),
    ((5, 56, 0, 29), (0.0893, -0.0381, 0.1926)),
    ((0, 10, 0, 20), (0.0, -0.1611, 0.2775)),
    ((0, 10, 0, 10), (0.0, -0.2775, 0.2775)),
    ((10, 10, 0, 20), (1.0, 0.6791, 1.0)),
    ((10, 10, 0, 10), (1.0, 0.6075, 1.0)),
]


@pytest.mark.parametrize(("counts", "expected"), PUBLISHED)
def test_the_interval_matches_newcombes_worked_examples(
    counts: tuple[int, int, int, int], expected: tuple[float, float, float]
) -> None:
    x1, n1, x2, n2 = counts
    result = newcombe_interval(Rate(n1, x1), Rate(n2, x2))
    assert (
        round(result.difference, 4),
        round(result.low, 4),
        round(result.high, 4),
    ) == pytest.approx(expected, abs=1e-9)


def test_an_interval_above_zero_excludes_zero_and_one_across_it_does_not() -> None:
    assert newcombe_interval(Rate(70, 56), Rate(80, 48)).excludes_zero
    assert not newcombe_interval(Rate(56, 5), Rate(29, 0)).excludes_zero


def test_a_lift_needs_people_in_both_groups() -> None:
    assert lift(Rate(100, 10), Rate(0, 0)) is None
    assert lift(Rate(0, 0), Rate(100, 10)) is None


def test_wilsons_interval_of_a_known_case() -> None:
    # 81 of 263 (Newcombe 1998, single proportion paper's example): 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@given(
    st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_the_interval_holds_the_observed_difference_and_stays_within_minus_one_and_one(
    treatment: tuple[int, int], control: tuple[int, int]
) -> None:
    result = newcombe_interval(Rate(treatment[1], treatment[0]), Rate(control[1], control[0]))
    assert -1.0 - 1e-12 <= result.low <= result.difference <= result.high <= 1.0 + 1e-12
