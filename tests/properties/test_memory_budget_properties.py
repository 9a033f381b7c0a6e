"""The profiles a shard keeps under the replay's default budget (`profiles_kept`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omniconsole.actors.profile_shard import profiles_kept

shares = st.integers(min_value=1, max_value=10**6)
counts = st.integers(min_value=0, max_value=10**8)


@given(shares, counts)
def test_never_fewer_than_the_share_nor_more_than_two_and_a_half_shares(
    share: int, known: int
) -> None:
    assert share <= profiles_kept(share, known) <= share * 5 // 2


@given(shares, counts, counts)
def test_knowing_more_customers_never_keeps_more_profiles(
    share: int, known: int, more: int
) -> None:
    assert profiles_kept(share, known + more) <= profiles_kept(share, known)


@given(shares, counts)
def test_many_customers_known_bring_it_down_to_the_share(share: int, known: int) -> None:
    # a known customer's residue is a tenth of a profile: at 15 shares' worth of
    # customers, what the budget allows beyond the share is spent on them
    assert profiles_kept(share, 15 * share + known) == share


def test_a_hundred_thousand_customers_stay_whole_at_the_default_share() -> None:
    # the bench logs: 100,000 customers, --max-active 50,000 split over 1 or 2 partitions
    assert profiles_kept(50_000, 100_000) >= 100_000
    assert profiles_kept(25_000, 50_000) >= 50_000
