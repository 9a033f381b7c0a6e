"""Properties of the stored profile's codec: `Profile.loads` (msgspec, typed) reads back
exactly what `Profile.from_json` (the decoded JSON, field by field) reads, and writing
the result again gives the same bytes — whatever a profile holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniconsole.domain.channel_state import ChannelState, Digest
from omniconsole.domain.messages import Handoff
from omniconsole.domain.profile import (
    Instance,
    Profile,
    ProfileDecodeError,
    SentMessage,
    Timer,
)

START = datetime(2026, 3, 2, tzinfo=UTC)
names = st.text("abcdefgh_", min_size=1, max_size=8)
times = st.integers(0, 40 * 86_400 * 1_000_000).map(lambda us: START + timedelta(microseconds=us))
# what a trait or an event property can be (JSON scalars, lists and objects of them)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
instances = st.builds(
    Instance, names, st.integers(1, 9), times, st.sets(names, max_size=3),
    st.sets(names, max_size=3), st.dictionaries(names, json_values, max_size=3),
    st.none() | names,
)  # fmt: skip
timers = st.builds(
    Timer, times, st.integers(1, 99), st.sampled_from(["step", "redecide", "expire"]), names,
    st.integers(1, 9), names, names, st.none() | times,
    st.lists(st.sampled_from(["email", "sms", "push"]), max_size=3).map(tuple), st.booleans(),
)  # fmt: skip
sent = st.builds(
    SentMessage, names, names, st.integers(1, 9), names, names, times, st.booleans(),
    st.booleans(),
)  # fmt: skip
digests = st.builds(
    Digest, names, names, names, times, st.just("6h"),
    st.lists(st.dictionaries(names, json_values, max_size=2), max_size=2),
    st.lists(names, max_size=2),
)  # fmt: skip
channel_states = st.none() | st.builds(
    ChannelState,
    st.lists(st.tuples(st.integers(0, 2**40), names), max_size=3),
    st.lists(st.tuples(st.integers(0, 2**40), names, names), max_size=3),
    st.dictionaries(names, st.dictionaries(names, st.booleans(), max_size=2), max_size=2),
    st.lists(digests, max_size=2),
)
profiles = st.builds(
    Profile,
    names,
    traits=st.dictionaries(names, json_values, max_size=5),
    opted_out=st.sets(st.sampled_from(["email", "sms", "whatsapp", "rcs", "push"])),
    engagement=st.none() | st.builds(Handoff, names, names, names),
    event_times=st.dictionaries(names, times, max_size=3),
    entered_once=st.sets(names, max_size=3),
    instance_counter=st.dictionaries(names, st.integers(0, 99), max_size=3),
    instances=st.lists(instances, max_size=3),
    timers=st.lists(timers, max_size=3),
    sent=st.lists(sent, max_size=3),
    decision_seq=st.integers(0, 10**6),
    timer_seq=st.integers(0, 10**6),
    channel_state=channel_states,
)


@settings(max_examples=200, deadline=None)
@given(profiles)
def test_a_stored_profile_reads_back_the_same_whichever_decoder_reads_it(p: Profile) -> None:
    stored = p.dumps()
    typed = Profile.loads(stored)
    assert typed == Profile.from_json(orjson.loads(stored))
    assert typed.dumps() == stored


def test_a_profile_stored_before_engagement_arms_and_channel_state_existed_still_loads() -> None:
    old = {
        "customer": "c-1", "traits": {"email": "a@example.com"}, "opted_out": ["sms"],
        "event_times": {}, "entered_once": [], "instance_counter": {"onboarding": 1},
        "instances": [{"journey": "onboarding", "number": 1,
                       "entered_at": "2026-03-02T10:00:00+00:00", "seen": [],
                       "finished_steps": ["welcome"], "properties": {}}],
        "timers": [], "sent": [], "decision_seq": 1, "timer_seq": 1,
    }  # fmt: skip
    loaded = Profile.loads(orjson.dumps(old))
    assert loaded == Profile.from_json(old)
    assert loaded.engagement is None and loaded.channel_state is None
    assert loaded.instances[0].arm is None


@pytest.mark.parametrize(
    "state",
    [
        b"{not json",
        b'{"traits": {}}',
        b'{"customer": 7}',
        b'{"customer": "c-1", "timers": [{}]}',
        b"[]",
    ],
)
def test_stored_bytes_that_are_not_a_profile_are_refused_with_a_clear_error(state: bytes) -> None:
    with pytest.raises(ProfileDecodeError):
        Profile.loads(state)
