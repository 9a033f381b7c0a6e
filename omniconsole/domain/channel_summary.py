"""A customer's channel intelligence as a support agent reads it: topics per channel,
affinity scores and the best hour — computed by the same functions the engine decides
with, from the stored profile and the run's config (the console's customer pane)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from omniconsole.domain.affinity import Score, scores
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import JourneyDef, Policy
from omniconsole.domain.preferences import is_on, topic_views
from omniconsole.domain.profile import Profile
from omniconsole.domain.send_time import BestHour, best_hour


@dataclass(frozen=True, slots=True)
class TopicLine:
    """One topic: on or off per channel its journeys use."""

    name: str
    label: str
    transactional: bool
    channels: tuple[tuple[str, bool], ...]


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """Topics, affinity scores (channels the customer can be reached on) and the best
    hour; parts the policy does not configure are empty / None."""

    topics: tuple[TopicLine, ...]
    affinity: tuple[Score, ...]
    best_hour: BestHour | None
    open_digests: int


def customer_channels(
    profile: Profile, policy: Policy | None, journeys: Iterable[JourneyDef], now: datetime | None
) -> ChannelSummary | None:
    """The summary for `profile` at `now`, or None when the policy has no channel rules."""
    chan = None if policy is None else policy.channel_policy
    if chan is None:
        return None
    state = profile.channel_state
    topics = tuple(
        TopicLine(
            view.name,
            view.label,
            view.transactional,
            tuple(
                (str(c), view.transactional or is_on(state, view.topic, c)) for c in view.channels
            ),
        )
        for view in topic_views(chan.topics, journeys)
    )
    affinity: tuple[Score, ...] = ()
    hour: BestHour | None = None
    settings = chan.engagement
    if settings is not None and now is not None:
        reachable = [c for c in Channel if profile.usable(c, Category.LIFECYCLE)]
        affinity = tuple(
            sorted(scores(state, reachable, int(now.timestamp()), settings),
                   key=lambda s: -s.value)
        )  # fmt: skip
        hour = best_hour(state, profile.timezone, now, settings)
    digests = 0 if state is None or now is None else sum(1 for d in state.digests if now < d.closes)
    return ChannelSummary(topics, affinity, hour, digests)
