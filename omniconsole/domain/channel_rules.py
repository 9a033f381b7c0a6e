"""The flow's side of channel intelligence: what it records on the profile and the plan
each send request carries.

`CustomerFlow` holds one `ChannelRules` when the config turns any part on
(`ChannelRules.for_config`), None otherwise — then none of this runs. It

- records sends and engagements (opens, clicks, replies that are not STOP/START
  keywords) for affinity and best hours, when the policy has `[engagement]`;
- applies topic choices from `identify` traits and from `Unsubscribed` / `Subscribed`
  events naming a topic (`omniconsole.domain.preferences`);
- keeps digests: the first trigger of a digest step opens one, later triggers within
  its window join it, and its message is decided with every item when it closes;
- builds the `ChannelPlan` of each request of a step with rules
  (`omniconsole.domain.selection` decides with it).

Everything read here is the customer's own history and the config, so one customer's
decisions depend only on that customer's events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from omniconsole.domain.affinity import ranked, scores
from omniconsole.domain.channel_config import EngagementSettings, StepChoice, TopicDef
from omniconsole.domain.channel_plan import ChannelPlan, DigestSummary
from omniconsole.domain.channel_state import ChannelState, Digest
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.config import EngineConfig, JourneyDef, StepDef
from omniconsole.domain.governor import DEFERRED, Decision
from omniconsole.domain.preferences import (
    TOPICS_TRAIT,
    channels_off,
    event_choice,
    trait_choices,
)
from omniconsole.domain.profile import ENGAGEMENT_ACTIONS, START_WORDS, STOP_WORDS, Profile
from omniconsole.domain.send_time import best_hour

#: the template property that lists a digest's items (each trigger's entry properties)
ITEMS = "items"


class ChannelRules:
    """Channel intelligence for one config (see the module docstring). Stateless: the
    customer's state is `Profile.channel_state`."""

    def __init__(self, config: EngineConfig) -> None:
        chan = config.policy.channel_policy
        self.engagement: EngagementSettings | None = None if chan is None else chan.engagement
        self.topics: dict[str, TopicDef] = {} if chan is None else {t.name: t for t in chan.topics}
        # a transactional topic cannot be turned off: its choices are not even kept
        self.fixed_topics = frozenset(
            j.topic
            for j in config.journeys
            if j.topic is not None and j.category is Category.TRANSACTIONAL
        )
        self.journey_topic: dict[str, TopicDef] = {
            j.name: self.topics[j.topic]
            for j in config.journeys
            if j.topic is not None and j.topic not in self.fixed_topics
        }
        self.block: dict[Category, str] = {} if chan is None else dict(chan.on_block)
        self.planned = frozenset(
            j.name
            for j in config.journeys
            if j.name in self.journey_topic
            or j.category in self.block
            or any(s.choice is not None for s in j.steps)
        )

    @classmethod
    def for_config(cls, config: EngineConfig) -> ChannelRules | None:
        """The rules of `config`, or None when it turns nothing on."""
        rules = cls(config)
        if rules.engagement is None and not rules.topics and not rules.planned:
            return None
        return rules

    # ---- what the customer does ----

    def on_traits(self, profile: Profile, traits: Mapping[str, Any]) -> None:
        """An `identify` (or a track carrying traits): topic choices in `topics`."""
        if not self.topics or TOPICS_TRAIT not in traits:
            return
        for topic, channel, on in trait_choices(traits[TOPICS_TRAIT]):
            if topic in self.topics and topic not in self.fixed_topics:
                _state(profile).choose(topic, channel, on)

    def on_event(
        self, profile: Profile, now: datetime, name: str, props: Mapping[str, Any]
    ) -> bool:
        """A track event. True when it was a topic's (un)subscribe, which then does not
        touch the channel's own consent."""
        if self.topics and (name == "Unsubscribed" or name == "Subscribed"):
            choice = event_choice(name, props)
            if choice is not None and choice[0] in self.topics:
                topic, scope, on = choice
                if topic not in self.fixed_topics:
                    _state(profile).choose(topic, scope, on)
                return True
            return False
        settings = self.engagement
        if settings is None:
            return False
        channel = props.get("channel")
        if name in ENGAGEMENT_ACTIONS:
            if not isinstance(channel, str) or not channel:
                return False
        elif name == "Inbound Message":
            channel = channel if isinstance(channel, str) and channel else Channel.SMS.value
            body = props.get("body")
            word = body.strip().casefold() if isinstance(body, str) else ""
            if word in STOP_WORDS or word in START_WORDS:
                return False  # a keyword is consent, not engagement
        else:
            return False
        message_id = props.get("message_id")
        second = int(now.timestamp())
        _state(profile).record_engagement(
            second,
            channel,
            message_id if isinstance(message_id, str) else "",
            second - int(settings.window.total_seconds()),
        )
        return False

    def sent(self, profile: Profile, channel: str, now: datetime) -> None:
        """A message went out on `channel`."""
        settings = self.engagement
        if settings is not None:
            second = int(now.timestamp())
            _state(profile).record_send(
                second, channel, second - int(settings.window.total_seconds())
            )

    # ---- digests ----

    def open_digest(
        self, profile: Profile, journey: JourneyDef, step: StepDef, now: datetime
    ) -> Digest | None:
        """The digest a new trigger of `step` joins at `now`, if one is open."""
        choice = step.choice
        state = profile.channel_state
        if choice is None or choice.digest is None or state is None:
            return None
        return state.open_digest(journey.name, step.name, now)

    @staticmethod
    def join(digest: Digest, message_id: str, props: Mapping[str, Any]) -> None:
        """A trigger joins `digest`: its item is listed, its message id remembered."""
        digest.items.append(dict(props))
        digest.joined.append(message_id)

    def settled(
        self,
        profile: Profile,
        plan: ChannelPlan,
        message_id: str,
        journey: str,
        step: str,
        props: Mapping[str, Any],
        decision: Decision,
    ) -> None:
        """After a planned decision: a digest opens when its first trigger was deferred
        to collect others; a digest's state goes once its message is finally decided."""
        state = profile.channel_state
        deferred = decision.outcome == DEFERRED
        if plan.digest_open is not None:
            reason = decision.reason or ""
            if deferred and decision.until is not None and reason.startswith("digest:"):
                _state(profile).digests.append(
                    Digest(message_id, journey, step, decision.until, plan.digest_label,
                           [dict(props)])
                )  # fmt: skip
            return
        if plan.digest is not None and not deferred and state is not None:
            state.digests = [d for d in state.digests if d.message_id != message_id]

    # ---- the plan of one request ----

    def plan(
        self,
        profile: Profile,
        journey: JourneyDef,
        step: StepDef,
        message_id: str,
        channels: tuple[Channel, ...],
        usable: frozenset[Channel],
        now: datetime,
        *,
        resend: bool,
        fresh: bool,
        joined: str | None,
        props: dict[str, Any],
    ) -> tuple[frozenset[Channel], ChannelPlan | None, dict[str, Any]]:
        """(usable channels, plan, template properties) of one request; no plan for a
        journey without rules."""
        if journey.name not in self.planned:
            return usable, None, props
        choice = step.choice or _NO_CHOICE
        state = profile.channel_state
        plan = ChannelPlan(on_block=choice.on_block or self.block.get(journey.category))
        topic = self.journey_topic.get(journey.name)
        if topic is not None:
            plan.topic = topic.name
            plan.topic_off = channels_off(state, topic, usable)
            if plan.topic_off:
                usable = usable - plan.topic_off
        if joined is not None:
            plan.joined = joined
            plan.digest_label = choice.digest_label
            return usable, plan, props
        settings = self.engagement
        if choice.select == "affinity" and settings is not None:
            candidates = [c for c in channels if c in usable]
            plan.scores = scores(state, candidates, int(now.timestamp()), settings)
            order = ranked(channels, plan.scores)
            preferred = profile.preferred_channel
            if preferred is not None and preferred in channels:
                # a stated preference outranks an inferred one
                order = (Channel(preferred), *(c for c in order if c != preferred))
            plan.order = order
        if choice.send_at is not None and settings is not None and not resend:
            plan.best_hour = best_hour(state, profile.timezone, now, settings)
            plan.max_delay = choice.max_delay
        if choice.digest is not None and not resend:
            plan.digest_label = choice.digest_label
            digest = None if fresh or state is None else state.digest(message_id)
            if fresh:
                plan.digest_open = choice.digest
            elif digest is not None:
                plan.digest = DigestSummary(digest.window, len(digest.items), tuple(digest.joined))
                props = {**props, ITEMS: list(digest.items)}
        return usable, plan, props


_NO_CHOICE = StepChoice()


def _state(profile: Profile) -> ChannelState:
    state = profile.channel_state
    if state is None:
        state = profile.channel_state = ChannelState()
    return state
