"""The preference centre: topics a customer turns on or off, per channel.

Topics are named in `policy.toml` (`[[topic]]`); each journey belongs to at most one
(`topic = "…"`). A customer's choices come from three places, latest wins:

- an `identify` trait `topics`: `{"deals": false}` (every channel) or
  `{"deals": {"sms": false, "email": true}}` (per channel);
- `Unsubscribed` / `Subscribed` events whose properties name a configured `topic`
  (`channel`: a channel or `all`, the default) — such an event is about that topic
  alone, not the channel as a whole;
- the signed preference page `serve` renders, which sends those same events.

A topic turned off on a channel is consent withdrawn there for the topic's messages:
that channel is not usable for them (ledger reason `consent:topic:<name>` when that
left no channel). A topic whose journeys are transactional cannot be turned off:
choices for it are ignored. An `Unsubscribed` naming a topic the config does not know is
taken as the channel-wide unsubscribe it would otherwise be: consent errs on the side
of the customer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omniconsole.domain.channel_config import TopicDef
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import CHANNEL_NAMES, Category, Channel

#: the identify trait that carries topic choices
TOPICS_TRAIT = "topics"


def page_token(secret: str, customer: str) -> str:
    """The token of `customer`'s preference page link: only we can mint one."""
    return hmac.new(
        secret.encode(), f"preferences\n{customer}".encode(), hashlib.sha256
    ).hexdigest()[:32]


def page_token_valid(secret: str, customer: str, token: str) -> bool:
    """Whether `token` is the preference page token of `customer`."""
    try:
        return hmac.compare_digest(page_token(secret, customer), token)
    except (TypeError, UnicodeError):
        return False


@dataclass(frozen=True, slots=True)
class TopicView:
    """A topic as the preference page and the console show it."""

    topic: TopicDef
    channels: tuple[Channel, ...]  # every channel its journeys may use, in list order
    transactional: bool

    @property
    def name(self) -> str:
        """The topic's name."""
        return self.topic.name

    @property
    def label(self) -> str:
        """The topic as customers read it."""
        return self.topic.label


def topic_views(topics: Iterable[TopicDef], journeys: Iterable[Any]) -> list[TopicView]:
    """Each configured topic with the channels of its journeys (`JourneyDef`s)."""
    journeys = list(journeys)
    views: list[TopicView] = []
    for topic in topics:
        channels: list[Channel] = []
        transactional = False
        for journey in journeys:
            if journey.topic != topic.name:
                continue
            transactional = transactional or journey.category is Category.TRANSACTIONAL
            for step in journey.steps:
                channels.extend(c for c in step.channels if c not in channels)
        views.append(TopicView(topic, tuple(channels), transactional))
    return views


def is_on(state: ChannelState | None, topic: TopicDef, channel: str) -> bool:
    """Whether the customer hears about `topic` on `channel`."""
    choices = None if state is None else state.topics.get(topic.name)
    if choices:
        found = choices.get(channel)
        if found is not None:
            return found
        every = choices.get("all")
        if every is not None:
            return every
    return channel not in topic.default_off


def channels_off(
    state: ChannelState | None, topic: TopicDef, usable: Iterable[Channel]
) -> frozenset[Channel]:
    """Those of `usable` the customer turned `topic` off on (or never turned on)."""
    return frozenset(c for c in usable if not is_on(state, topic, c))


def choices_of(
    state: ChannelState | None, topic: TopicDef, channels: Iterable[Channel]
) -> dict[str, bool]:
    """Channel -> on, for the preference page."""
    return {str(c): is_on(state, topic, c) for c in channels}


def trait_choices(value: object) -> list[tuple[str, str, bool]]:
    """(topic, channel or "all", on) from a `topics` trait; malformed parts are skipped
    (a trait is customer data: it must not stop the engine)."""
    out: list[tuple[str, str, bool]] = []
    if not isinstance(value, Mapping):
        return out
    for topic, choice in value.items():
        if not isinstance(topic, str):
            continue
        if isinstance(choice, bool):
            out.append((topic, "all", choice))
        elif isinstance(choice, Mapping):
            for channel, on in choice.items():
                if isinstance(on, bool) and (channel == "all" or channel in CHANNEL_NAMES):
                    out.append((topic, channel, on))
    return out


def event_choice(name: str, props: Mapping[str, Any]) -> tuple[str, str, bool] | None:
    """(topic, channel or "all", on) of an `Unsubscribed` / `Subscribed` naming a topic."""
    topic = props.get("topic")
    if not isinstance(topic, str) or not topic:
        return None
    channel = props.get("channel")
    if not isinstance(channel, str) or not channel:
        channel = "all"
    if channel != "all" and channel not in CHANNEL_NAMES:
        return None
    return topic, channel, name == "Subscribed"
