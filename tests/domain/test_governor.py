"""The fatigue governor's decision for one send (SPEC §4), with the shipped policy.

Each test builds one `SendRequest` and the customer's cap usage by hand and checks what
the operator would read in the ledger: outcome, channel, reason, and when a deferred
send comes back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import Policy, load_config, shipped_config_dir
from omniconsole.domain.governor import (
    DEFERRED,
    SEND,
    SUPPRESSED,
    CapUsage,
    Decision,
    SendRequest,
    decide,
)
from omniconsole.domain.messages import Handoff

POLICY: Policy = load_config(shipped_config_dir()).policy
NOON = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)  # a Monday, UTC
H = timedelta(hours=1)
M = timedelta(minutes=1)

L = Category.LIFECYCLE
P = Category.PROMOTIONAL
T = Category.TRANSACTIONAL

NUDGE = (Channel.WHATSAPP, Channel.PUSH, Channel.SMS, Channel.EMAIL)
ALL = frozenset(Channel)


def request(
    *,
    now: datetime = NOON,
    category: Category = L,
    channels: tuple[Channel, ...] = NUDGE,
    usable: frozenset[Channel] | set[Channel] = ALL,
    preferred: str | None = None,
    timezone: str = "UTC",
    first_due: datetime | None = None,
    event_times: dict[str, datetime] | None = None,
    engagement: Handoff | None = None,
    exited: bool = False,
) -> SendRequest:
    return SendRequest(
        customer="c-1",
        seq=1,
        message_id="c-1:j:1:s",
        journey="j",
        instance=1,
        step="s",
        category=category,
        channels=channels,
        usable=frozenset(usable),
        preferred=preferred,
        timezone=timezone,
        now=now,
        first_due=first_due or now,
        event_times=event_times or {},
        engagement=engagement,
        exited=exited,
    )


def usage(*sends: tuple[datetime, str]) -> CapUsage:
    return CapUsage(sorted(sends))


def run(req: SendRequest, sends: CapUsage | None = None) -> Decision:
    return decide(req, POLICY, sends if sends is not None else CapUsage())


def emails(*times: datetime) -> CapUsage:
    return usage(*((t, "email") for t in times))


# ---- (1) channel choice ----


def test_first_usable_channel_in_list_order() -> None:
    d = run(request(usable={Channel.SMS, Channel.EMAIL, Channel.PUSH}))
    assert (d.outcome, d.channel, d.reason) == (SEND, Channel.PUSH, None)


def test_preferred_channel_goes_first_when_in_the_list_and_usable() -> None:
    d = run(request(preferred="email"))
    assert (d.outcome, d.channel) == (SEND, Channel.EMAIL)


def test_preferred_channel_not_in_the_list_is_ignored() -> None:
    d = run(request(channels=(Channel.PUSH, Channel.EMAIL), preferred="sms"))
    assert d.channel == Channel.PUSH


def test_preferred_channel_not_usable_falls_back_to_list_order() -> None:
    d = run(request(usable={Channel.PUSH, Channel.EMAIL}, preferred="sms"))
    assert d.channel == Channel.PUSH


def test_channel_with_full_own_cap_falls_to_the_next_channel() -> None:
    d = run(request(), usage((NOON - 3 * H, "whatsapp")))
    assert (d.outcome, d.channel) == (SEND, Channel.PUSH)


def test_preferred_channel_with_full_own_cap_falls_to_list_order() -> None:
    d = run(request(preferred="sms"), usage((NOON - 3 * H, "sms")))
    assert d.channel == Channel.WHATSAPP


def test_own_cap_window_excludes_its_start() -> None:
    d = run(request(), usage((NOON - 24 * H, "whatsapp")))
    assert d.channel == Channel.WHATSAPP
    d = run(request(), usage((NOON - 24 * H + timedelta(seconds=1), "whatsapp")))
    assert d.channel == Channel.PUSH


def test_no_usable_channel_is_suppressed_unreachable() -> None:
    for category in (T, L, P):
        d = run(request(category=category, usable={Channel.IN_APP, Channel.RCS}))
        assert (d.outcome, d.channel, d.reason) == (SUPPRESSED, None, "unreachable")
        assert "no usable channel" in d.explanation


def test_only_channel_capped_is_suppressed_with_no_channel() -> None:
    """Own cap full on the only usable channel: nothing usable, no channel on the line.

    The reason names the cap (the implementation's reading; SPEC §5 would say
    `unreachable` for "no usable channel").
    """
    d = run(request(usable={Channel.WHATSAPP}), usage((NOON - H, "whatsapp")))
    assert (d.outcome, d.channel) == (SUPPRESSED, None)
    assert d.reason in {"unreachable", "cap:whatsapp:24h"}


def test_a_step_blocked_only_by_its_channels_own_cap_names_that_cap() -> None:
    """SPEC §5 as amended on 2026-11-30: blocked only by its channels' own caps, the
    step is suppressed with that cap as its reason, not `unreachable`."""
    d = run(request(usable={Channel.WHATSAPP}), usage((NOON - H, "whatsapp")))
    assert (d.outcome, d.channel, d.reason) == (SUPPRESSED, None, "cap:whatsapp:24h")
    assert "cap:whatsapp:24h" in d.explanation


def test_transactional_ignores_the_channel_cap() -> None:
    d = run(
        request(category=T, channels=(Channel.SMS, Channel.EMAIL)),
        usage((NOON - H, "sms")),
    )
    assert (d.outcome, d.channel) == (SEND, Channel.SMS)


# ---- (2) suppression after a support ticket ----


@pytest.mark.parametrize(
    ("since", "outcome"),
    [
        (timedelta(0), SUPPRESSED),
        (47 * H + 59 * M, SUPPRESSED),
        (48 * H - timedelta(seconds=1), SUPPRESSED),
        (48 * H, SEND),
        (49 * H, SEND),
    ],
)
def test_promotional_suppressed_within_48h_of_a_support_ticket(
    since: timedelta, outcome: str
) -> None:
    ticket = {"Support Ticket Opened": NOON - since}
    d = run(request(category=P, channels=(Channel.EMAIL,), event_times=ticket))
    assert d.outcome == outcome
    if outcome == SUPPRESSED:
        assert d.reason == "suppression:support_ticket"
        assert d.channel == Channel.EMAIL
        assert "Support Ticket Opened" in d.explanation


@pytest.mark.parametrize("category", [L, T])
def test_support_ticket_does_not_suppress_other_categories(category: Category) -> None:
    ticket = {"Support Ticket Opened": NOON - H}
    d = run(request(category=category, channels=(Channel.EMAIL,), event_times=ticket))
    assert d.outcome == SEND


def test_suppression_beats_quiet_hours_and_caps() -> None:
    night = datetime(2026, 2, 2, 23, tzinfo=UTC)
    ticket = {"Support Ticket Opened": night - H}
    d = run(
        request(now=night, category=P, channels=(Channel.PUSH,), event_times=ticket),
        emails(night - 2 * H, night - 3 * H),
    )
    assert (d.outcome, d.reason) == (SUPPRESSED, "suppression:support_ticket")


# ---- (3) quiet hours ----


def at_local(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ((2026, 2, 2, 20, 59), False),
        ((2026, 2, 2, 21, 0), True),
        ((2026, 2, 2, 23, 30), True),
        ((2026, 2, 3, 0, 0), True),
        ((2026, 2, 3, 7, 59), True),
        ((2026, 2, 3, 8, 0), False),
        ((2026, 2, 3, 12, 0), False),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York", "Asia/Kolkata"])
def test_quiet_hours_edges_in_local_time(
    zone: str, local: tuple[int, int, int, int, int], quiet: bool
) -> None:
    now = at_local(zone, *local)
    d = run(request(now=now, channels=(Channel.SMS,), timezone=zone))
    if not quiet:
        assert (d.outcome, d.channel) == (SEND, Channel.SMS)
        return
    assert (d.outcome, d.channel, d.reason) == (DEFERRED, Channel.SMS, "quiet_hours")
    day = local[2] + (1 if local[3] >= 21 else 0)
    assert d.until == at_local(zone, 2026, 2, day, 8, 0)
    assert d.until is not None and d.until.tzinfo is not None
    assert d.until.utcoffset() == timedelta(0)
    assert "quiet hours" in d.explanation


@pytest.mark.parametrize(
    ("zone", "now", "until"),
    [
        # 01:30 EST on the spring-forward day; 08:00 that day is EDT (UTC-4)
        (
            "America/New_York",
            datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
            datetime(2026, 3, 8, 12, tzinfo=UTC),
        ),
        # 21:30 EDT on 03-08 (a stale EST offset would call it 20:30, not quiet)
        (
            "America/New_York",
            datetime(2026, 3, 9, 1, 30, tzinfo=UTC),
            datetime(2026, 3, 9, 12, tzinfo=UTC),
        ),
        # 01:30 EDT on the fall-back day; 08:00 that day is EST (UTC-5)
        (
            "America/New_York",
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 1, 13, tzinfo=UTC),
        ),
        # 22:00 EDT on 10-31; 08:00 on 11-01 is EST
        (
            "America/New_York",
            datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 13, tzinfo=UTC),
        ),
        # 22:30 CET on 03-28; 08:00 CEST on 03-29 is 06:00Z
        (
            "Europe/Berlin",
            datetime(2026, 3, 28, 21, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 6, tzinfo=UTC),
        ),
        # 02:30 does not exist in Berlin on 03-29: 01:30Z is 03:30 CEST
        (
            "Europe/Berlin",
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 6, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_deferral_on_dst_change_days(zone: str, now: datetime, until: datetime) -> None:
    d = run(request(now=now, channels=(Channel.PUSH,), timezone=zone))
    assert (d.outcome, d.reason, d.until) == (DEFERRED, "quiet_hours", until)


@pytest.mark.parametrize(
    ("zone", "now"),
    [
        ("America/New_York", datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),  # 08:00 EDT
        ("America/New_York", datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),  # 08:00 EST
        ("America/New_York", datetime(2026, 3, 9, 0, 59, tzinfo=UTC)),  # 20:59 EDT
        ("Europe/Berlin", datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # 08:00 CEST
    ],
)
def test_not_quiet_right_at_the_edges_on_dst_days(zone: str, now: datetime) -> None:
    d = run(request(now=now, channels=(Channel.PUSH,), timezone=zone))
    assert d.outcome == SEND


def test_unknown_timezone_is_read_as_utc() -> None:
    d = run(request(now=NOON.replace(hour=22), channels=(Channel.SMS,), timezone="Mars/Base"))
    assert d.until == datetime(2026, 2, 3, 8, tzinfo=UTC)


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.WHATSAPP, Channel.RCS, Channel.PUSH])
def test_quiet_hours_apply_to_phone_and_push_channels(channel: Channel) -> None:
    d = run(request(now=NOON.replace(hour=22), channels=(channel,)))
    assert (d.outcome, d.reason) == (DEFERRED, "quiet_hours")


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.IN_APP])
def test_quiet_hours_do_not_apply_to_email_or_in_app(channel: Channel) -> None:
    d = run(request(now=NOON.replace(hour=22), channels=(channel,)))
    assert d.outcome == SEND


def test_transactional_ignores_quiet_hours() -> None:
    d = run(request(now=NOON.replace(hour=23), category=T, channels=(Channel.SMS,)))
    assert (d.outcome, d.channel) == (SEND, Channel.SMS)
    assert "transactional" in d.explanation


def test_quiet_hours_beat_the_all_channel_cap() -> None:
    night = NOON.replace(hour=22)
    d = run(
        request(now=night, category=P, channels=(Channel.PUSH,)), emails(night - H, night - 2 * H)
    )
    assert (d.outcome, d.reason) == (DEFERRED, "quiet_hours")


# ---- (4) all-channel caps ----


def test_two_capped_sends_in_24h_fill_the_all_channel_cap() -> None:
    d = run(request(category=P, channels=(Channel.EMAIL,)), emails(NOON - 5 * H, NOON - H))
    assert (d.outcome, d.channel, d.reason) == (SUPPRESSED, Channel.EMAIL, "cap:all:24h")
    assert "cap" in d.explanation and "2 of 2" in d.explanation


def test_a_send_exactly_24h_before_no_longer_counts() -> None:
    d = run(request(category=P, channels=(Channel.EMAIL,)), emails(NOON - 24 * H, NOON - H))
    assert d.outcome == SEND
    d = run(
        request(category=P, channels=(Channel.EMAIL,)),
        emails(NOON - 24 * H + timedelta(microseconds=1), NOON - H),
    )
    assert (d.outcome, d.reason) == (SUPPRESSED, "cap:all:24h")


def test_five_capped_sends_in_7d_fill_the_weekly_cap() -> None:
    days = [NOON - timedelta(days=n) for n in (6, 5, 4, 3, 2)]
    d = run(request(category=P, channels=(Channel.EMAIL,)), emails(*days))
    assert (d.outcome, d.reason) == (SUPPRESSED, "cap:all:7d")


def test_a_send_exactly_7d_before_no_longer_counts() -> None:
    days = [NOON - timedelta(days=n) for n in (7, 5, 4, 3, 2)]
    d = run(request(category=P, channels=(Channel.EMAIL,)), emails(*days))
    assert d.outcome == SEND


def test_uncounted_history_does_not_fill_the_cap() -> None:
    """Usage holds only capped sends; in_app and transactional are never recorded."""
    d = run(request(category=P, channels=(Channel.EMAIL,)), emails(NOON - H))
    assert d.outcome == SEND


def test_lifecycle_is_deferred_to_the_earliest_room() -> None:
    d = run(request(channels=(Channel.EMAIL,)), emails(NOON - 3 * H, NOON - 2 * H))
    assert (d.outcome, d.channel, d.reason) == (DEFERRED, Channel.EMAIL, "cap:all:24h")
    assert d.until == NOON + 21 * H
    assert "deferred" in d.explanation


def test_lifecycle_weekly_cap_deferred_to_when_the_oldest_send_drops_out() -> None:
    sends = emails(*(NOON - timedelta(days=n) for n in (6, 5, 4, 3, 2)))
    d = run(request(channels=(Channel.EMAIL,)), sends)
    assert (d.outcome, d.reason, d.until) == (DEFERRED, "cap:all:7d", NOON + timedelta(days=1))


def test_lifecycle_deferred_when_room_is_exactly_48h_after_first_due() -> None:
    first_due = NOON - 27 * H
    d = run(
        request(channels=(Channel.EMAIL,), first_due=first_due),
        emails(NOON - 3 * H, NOON - 2 * H),
    )
    assert d.until == first_due + 48 * H
    assert (d.outcome, d.reason) == (DEFERRED, "cap:all:24h")


def test_lifecycle_suppressed_when_room_is_more_than_48h_after_first_due() -> None:
    first_due = NOON - 27 * H - timedelta(seconds=1)
    d = run(
        request(channels=(Channel.EMAIL,), first_due=first_due),
        emails(NOON - 3 * H, NOON - 2 * H),
    )
    assert (d.outcome, d.channel, d.reason, d.until) == (
        SUPPRESSED,
        Channel.EMAIL,
        "cap:all:24h",
        None,
    )
    assert "48h" in d.explanation


def test_lifecycle_suppressed_at_once_when_the_weekly_room_is_too_far() -> None:
    sends = emails(*(NOON - timedelta(hours=n) for n in (30, 28, 26, 25, 2)))
    d = run(request(channels=(Channel.EMAIL,)), sends)
    # room when the send 30 h ago is 7 d old: 138 h after due > 48 h
    assert (d.outcome, d.reason) == (SUPPRESSED, "cap:all:7d")


def test_promotional_is_suppressed_not_deferred_by_the_cap() -> None:
    d = run(request(category=P, channels=(Channel.PUSH,)), emails(NOON - 3 * H, NOON - 2 * H))
    assert (d.outcome, d.until) == (SUPPRESSED, None)


def test_transactional_ignores_the_all_channel_cap() -> None:
    d = run(request(category=T, channels=(Channel.EMAIL,)), emails(NOON - 2 * H, NOON - H))
    assert d.outcome == SEND


def test_in_app_is_exempt_from_the_all_channel_cap() -> None:
    full = emails(*(NOON - timedelta(hours=n) for n in (30, 28, 26, 2, 1)))
    d = run(request(category=P, channels=(Channel.IN_APP,)), full)
    assert (d.outcome, d.channel) == (SEND, Channel.IN_APP)


def test_deciding_does_not_count_the_send() -> None:
    """Only the caller records a send it dispatches; a decision alone uses no room."""
    sends = emails(NOON - H)
    run(request(category=P, channels=(Channel.EMAIL,)), sends)
    assert [at for at, _ in sends.sends] == [NOON - H]


# ---- handoff ----


def test_handoff_when_the_channel_differs_from_the_last_engagement() -> None:
    eng = Handoff("email", "clicked", "2026-02-02T11:00:00Z")
    d = run(request(channels=(Channel.PUSH,), engagement=eng))
    assert d.handoff == eng
    assert "continues from" in d.explanation and "email" in d.explanation


def test_no_handoff_on_the_engagement_channel() -> None:
    eng = Handoff("push", "opened", "2026-02-02T11:00:00Z")
    d = run(request(channels=(Channel.PUSH,), engagement=eng))
    assert d.handoff is None


def test_no_handoff_without_engagement() -> None:
    assert run(request()).handoff is None


def test_no_handoff_on_a_deferral() -> None:
    eng = Handoff("email", "replied", "2026-02-02T11:00:00Z")
    d = run(request(now=NOON.replace(hour=22), channels=(Channel.SMS,), engagement=eng))
    assert (d.outcome, d.handoff) == (DEFERRED, None)


# ---- exited ----


def test_exited_request_is_suppressed_without_a_channel() -> None:
    d = run(request(exited=True))
    assert (d.outcome, d.channel, d.reason) == (SUPPRESSED, None, "exited")
    assert "no longer held" in d.explanation


def test_decisions_name_the_reason_in_words() -> None:
    texts: dict[str, Any] = {
        "sent": run(request(channels=(Channel.EMAIL,))).explanation,
        "quiet": run(request(now=NOON.replace(hour=22), channels=(Channel.SMS,))).explanation,
        "cap": run(
            request(category=P, channels=(Channel.EMAIL,)), emails(NOON - 2 * H, NOON - H)
        ).explanation,
    }
    assert "sent on email" in texts["sent"]
    assert "quiet hours" in texts["quiet"] and "08:00" in texts["quiet"]
    assert "all-channel cap full" in texts["cap"]


# ---- cap usage, packed ----

_SEND_TIMES = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10 * 24 * 3600 * 1_000_000),  # µs after NOON
        st.sampled_from([c.value for c in Channel]),
    ),
    max_size=12,
).map(sorted)


@given(sends=_SEND_TIMES, later=st.integers(min_value=0, max_value=9 * 24 * 3600 * 1_000_000))
def test_packed_cap_usage_counts_what_a_plain_list_of_sends_counts(
    sends: list[tuple[int, str]], later: int
) -> None:
    timed = [(NOON + timedelta(microseconds=us), channel) for us, channel in sends]
    usage = CapUsage(timed)
    now = NOON + timedelta(microseconds=later)
    assert usage.sends == timed
    for rule in POLICY.caps:
        start = now - rule.window  # a send exactly a window ago no longer counts
        assert usage.in_window(rule, now) == [
            at for at, ch in timed if at > start and rule.scope in ("all", ch)
        ]
        newest_first = 0
        for at, ch in reversed(timed):
            if at <= start:
                break
            newest_first += rule.scope in ("all", ch)
        assert usage.count(rule, now) == newest_first
    usage.prune(now, POLICY.longest_window)
    assert usage.sends == [s for s in timed if s[0] > now - POLICY.longest_window]


def test_a_released_send_no_longer_counts_and_its_twin_on_another_channel_still_does() -> None:
    usage = CapUsage([(NOON, "sms"), (NOON, "email")])
    assert usage.release(NOON, "sms")
    assert not usage.release(NOON, "sms")
    assert usage.sends == [(NOON, "email")]
