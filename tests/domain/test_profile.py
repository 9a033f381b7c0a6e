"""Channel usability and consent (SPEC §3), and the profile's persisted form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import Handoff
from omniconsole.domain.profile import Instance, Profile, SentMessage, Timer

T = Category.TRANSACTIONAL
L = Category.LIFECYCLE
P = Category.PROMOTIONAL
ALL_CATEGORIES = (T, L, P)

EVERYTHING: dict[str, Any] = {
    "email": "ana@example.com",
    "phone": "+14155550101",
    "whatsapp_opt_in": True,
    "rcs_capable": True,
    "push_token": "tok-1",
}


def profile(opted_out: tuple[str, ...] = (), **traits: Any) -> Profile:
    p = Profile("c-1", traits=dict(traits))
    for channel in opted_out:
        p.opt_out(channel)
    return p


def usable_for(p: Profile, category: Category) -> set[str]:
    return {c.value for c in Channel if p.usable(c, category)}


# ---- reachability ----


def test_a_customer_with_no_traits_has_only_in_app() -> None:
    for category in ALL_CATEGORIES:
        assert usable_for(profile(), category) == {"in_app"}


def test_a_fully_reachable_customer_has_every_channel() -> None:
    for category in ALL_CATEGORIES:
        assert usable_for(profile(**EVERYTHING), category) == {c.value for c in Channel}


@pytest.mark.parametrize(
    ("traits", "channels"),
    [
        ({"email": "a@b.c"}, {"email", "in_app"}),
        ({"phone": "+1415"}, {"sms", "in_app"}),
        ({"push_token": "t"}, {"push", "in_app"}),
        ({"phone": "+1415", "whatsapp_opt_in": True}, {"sms", "whatsapp", "in_app"}),
        ({"phone": "+1415", "rcs_capable": True}, {"sms", "rcs", "in_app"}),
        ({"whatsapp_opt_in": True, "rcs_capable": True}, {"in_app"}),
        ({"phone": "+1415", "whatsapp_opt_in": False}, {"sms", "in_app"}),
        ({"phone": "+1415", "whatsapp_opt_in": "true"}, {"sms", "in_app"}),
        ({"phone": "+1415", "rcs_capable": False}, {"sms", "in_app"}),
        ({"email": "", "phone": "  "}, {"in_app"}),
    ],
)
def test_each_channel_needs_its_address(traits: dict[str, Any], channels: set[str]) -> None:
    assert usable_for(profile(**traits), L) == channels


# ---- consent ----


@pytest.mark.parametrize("channel", ["email", "push"])
def test_email_and_push_unsubscribes_block_only_non_transactional(channel: str) -> None:
    p = profile(opted_out=(channel,), **EVERYTHING)
    assert not p.usable(Channel(channel), L)
    assert not p.usable(Channel(channel), P)
    assert p.usable(Channel(channel), T)


def test_sms_opt_out_blocks_sms_and_rcs_for_every_category() -> None:
    p = profile(opted_out=("sms",), **EVERYTHING)
    for category in ALL_CATEGORIES:
        assert usable_for(p, category) == {"email", "whatsapp", "push", "in_app"}


def test_whatsapp_opt_out_blocks_whatsapp_for_every_category() -> None:
    p = profile(opted_out=("whatsapp",), **EVERYTHING)
    for category in ALL_CATEGORIES:
        assert usable_for(p, category) == {"email", "sms", "rcs", "push", "in_app"}


def test_rcs_needs_capability_and_no_sms_opt_out() -> None:
    capable = profile(phone="+1415", rcs_capable=True)
    assert capable.usable(Channel.RCS, T)
    capable.opt_out("sms")
    assert not capable.usable(Channel.RCS, T)
    capable.opt_in("sms")
    assert capable.usable(Channel.RCS, T)


def test_unsubscribe_all_leaves_in_app_and_soft_channels_for_transactional() -> None:
    p = profile(opted_out=("all",), **EVERYTHING)
    assert usable_for(p, L) == {"in_app"}
    assert usable_for(p, P) == {"in_app"}
    assert usable_for(p, T) == {"email", "push", "in_app"}


def test_in_app_cannot_be_opted_out() -> None:
    p = profile(opted_out=("in_app",))
    assert p.usable(Channel.IN_APP, P)


def test_subscribe_undoes_a_channel_unsubscribe() -> None:
    p = profile(opted_out=("email",), **EVERYTHING)
    p.opt_in("email")
    assert p.usable(Channel.EMAIL, P)


def test_subscribe_all_undoes_unsubscribe_all() -> None:
    p = profile(opted_out=("all",), **EVERYTHING)
    p.opt_in("all")
    assert usable_for(p, P) == {c.value for c in Channel}


def test_subscribe_one_channel_after_all_reopens_only_that_channel() -> None:
    p = profile(opted_out=("all",), **EVERYTHING)
    p.opt_in("sms")
    assert usable_for(p, P) - {"rcs"} == {"sms", "in_app"}


def test_rcs_follows_the_sms_consent_after_unsubscribe_all() -> None:
    p = profile(opted_out=("all",), **EVERYTHING)
    p.opt_in("sms")
    assert p.usable(Channel.RCS, P)


def test_usable_channels_keeps_only_usable_ones_of_the_list() -> None:
    p = profile(opted_out=("whatsapp",), **EVERYTHING)
    got = p.usable_channels((Channel.WHATSAPP, Channel.PUSH, Channel.SMS), P)
    assert got == (Channel.PUSH, Channel.SMS)  # in the list's order


def test_timezone_defaults_to_utc() -> None:
    assert profile().timezone == "UTC"
    assert profile(timezone="Asia/Tokyo").timezone == "Asia/Tokyo"


# ---- persistence ----


def test_profile_round_trips_through_its_stored_form() -> None:
    at = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
    p = Profile(
        "c-7",
        traits={**EVERYTHING, "timezone": "Pacific/Auckland", "shoe_size": 39},
        opted_out={"sms", "email"},
        engagement=Handoff("whatsapp", "replied", "2026-02-02T09:00:00Z"),
        event_times={"Support Ticket Opened": at},
        entered_once={"onboarding"},
        instance_counter={"onboarding": 1, "price_drop": 3},
        instances=[
            Instance("onboarding", 1, at, {"Activated"}, {"welcome"}, {"plan": "pro"}),
        ],
        sent=[
            SentMessage("c-7:onboarding:1:welcome", "onboarding", 1, "welcome", "email", at, False)
        ],
        decision_seq=5,
        timer_seq=4,
    )
    p.add_timer(Timer(at.replace(day=5), 2, "step", "onboarding", 1, "nudge_day3"))
    p.add_timer(
        Timer(
            at.replace(day=3),
            4,
            "redecide",
            "price_drop",
            3,
            "alert",
            "c-7:price_drop:3:alert",
            at,
            ("push", "email"),
            True,
        )
    )
    back = Profile.loads(p.dumps())
    assert back == p
    assert back.dumps() == p.dumps()
    assert [t.step for t in back.timers] == ["alert", "nudge_day3"]


def test_timers_due_together_keep_the_order_they_were_set() -> None:
    p = Profile("c-1")
    due = datetime(2026, 2, 5, 10, tzinfo=UTC)
    p.add_timer(Timer(due, p.next_timer_seq(), "step", "onboarding", 1, "nudge_day3"))
    p.add_timer(Timer(due.replace(hour=9), p.next_timer_seq(), "step", "x", 1, "early"))
    p.add_timer(Timer(due, p.next_timer_seq(), "step", "product_recommendation", 1, "recommend"))
    assert [t.step for t in p.timers] == ["early", "nudge_day3", "recommend"]
