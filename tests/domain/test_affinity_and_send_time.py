"""Affinity scores and best hours from one customer's history (`domain.affinity`,
`domain.send_time`): smoothing toward the configured population, the window, ties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omniconsole.domain.affinity import ranked, scores
from omniconsole.domain.channel_config import EngagementSettings
from omniconsole.domain.channel_state import HISTORY_KEPT, ChannelState
from omniconsole.domain.channels import Channel
from omniconsole.domain.send_time import best_hour, next_hour_start

E, P, W = Channel.EMAIL, Channel.PUSH, Channel.WHATSAPP
SETTINGS = EngagementSettings(
    window=timedelta(days=30),
    window_label="30d",
    prior_weight=4.0,
    population=((E, 0.2), (P, 0.1), (W, 0.3)),
    population_hour=18,
    min_engagements=3,
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEC = int(NOW.timestamp())
DAY = 86400


def history(
    sends: list[tuple[int, str]] | None = None, engaged: list[tuple[int, str, str]] | None = None
) -> ChannelState:
    return ChannelState(list(sends or ()), list(engaged or ()))


def test_a_customer_without_history_scores_the_populations_rates() -> None:
    found = scores(None, (E, P, W), SEC, SETTINGS)
    assert [(s.channel, s.value) for s in found] == [(E, 0.2), (P, 0.1), (W, 0.3)]


def test_a_score_is_engagements_per_message_smoothed_toward_the_population() -> None:
    state = history([(SEC - DAY, "email")] * 4, [(SEC - DAY, "email", "")] * 3)
    (email,) = scores(state, (E,), SEC, SETTINGS)
    assert email.value == pytest.approx((3 + 4 * 0.2) / (4 + 4))
    assert (email.engaged, email.sent) == (3, 4)


def test_an_open_and_a_click_of_one_message_count_once() -> None:
    state = history([(SEC - DAY, "email")], [(SEC - DAY, "email", "m-1")] * 2)
    (email,) = scores(state, (E,), SEC, SETTINGS)
    assert email.engaged == 1


def test_history_older_than_the_window_does_not_count() -> None:
    old = SEC - 31 * DAY
    state = history([(old, "push")] * 5, [(old, "push", "")] * 5)
    (push,) = scores(state, (P,), SEC, SETTINGS)
    assert (push.engaged, push.sent, push.value) == (0, 0, 0.1)


def test_ranking_keeps_the_steps_order_for_equal_scores() -> None:
    found = scores(None, (P, W, E), SEC, SETTINGS)
    assert ranked((P, W, E), found) == (W, E, P)
    same = scores(None, (P, E), SEC, EngagementSettings(
        timedelta(days=1), "1d", 1.0, (), 18, 3))  # fmt: skip
    assert ranked((P, E), same) == (P, E)


def test_a_profile_remembers_a_bounded_history() -> None:
    state = ChannelState()
    for i in range(HISTORY_KEPT + 50):
        state.record_send(SEC + i, "email", SEC - DAY)
    assert len(state.sends) == HISTORY_KEPT and state.sends[-1][0] == SEC + HISTORY_KEPT + 49


def at_local_hour(hour: int, days_ago: int) -> tuple[int, str, str]:
    # New York is UTC-5 in February
    moment = datetime(2026, 2, 20 - days_ago, hour, 10, tzinfo=UTC) + timedelta(hours=5)
    return (int(moment.timestamp()), "email", "")


def test_the_best_hour_is_the_most_engaged_local_hour() -> None:
    state = history([], [at_local_hour(19, 1), at_local_hour(19, 2), at_local_hour(8, 3)])
    now = datetime(2026, 2, 21, 12, 0, tzinfo=UTC)
    best = best_hour(state, "America/New_York", now, SETTINGS)
    assert (best.hour, best.own, best.count, best.total) == (19, True, 2, 3)


def test_equal_hours_go_to_the_earlier_one() -> None:
    state = history([], [at_local_hour(19, 1), at_local_hour(7, 2), at_local_hour(19, 3),
                         at_local_hour(7, 4)])  # fmt: skip
    now = datetime(2026, 2, 21, 12, 0, tzinfo=UTC)
    assert best_hour(state, "America/New_York", now, SETTINGS).hour == 7


def test_too_little_history_uses_the_population_hour() -> None:
    state = history([], [at_local_hour(3, 1)])
    best = best_hour(state, "America/New_York", datetime(2026, 2, 21, tzinfo=UTC), SETTINGS)
    assert (best.hour, best.own, best.total) == (18, False, 1)


def test_the_next_start_of_an_hour_is_in_the_customers_zone() -> None:
    now = datetime(2026, 2, 21, 12, 0, tzinfo=UTC)  # 07:00 in New York
    assert next_hour_start(now, "America/New_York", 19) == datetime(2026, 2, 22, 0, 0, tzinfo=UTC)
    assert next_hour_start(now, "America/New_York", 6) == datetime(2026, 2, 22, 11, 0, tzinfo=UTC)
    assert next_hour_start(now, "America/New_York", 7) == now
