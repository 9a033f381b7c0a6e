"""Channel intelligence as the config declares it: engagement history, what a block does,
topics, click tracking (in `policy.toml`) and a step's choice rules (in a journey file).

All of it is off in the shipped config; each part is opt-in:

- `[engagement]` — the history affinity and best-hour sends learn from, and the
  population's rates and hour a customer without history starts from;
- `[on_block]` — per category, what a full own-channel cap or quiet hours on the chosen
  channel does: `defer`, `suppress` or `switch`;
- `[[topic]]` — the preference centre's topics (a journey names its one with `topic`);
- `[tracking]` — signed click redirects and an open pixel in live sends;
- in a `[[step]]`: `select = "affinity"`, `on_block`, `send_at = "best_hour"` with
  `max_delay`, `digest = "6h"`.

Parsing lives here, called by `omniconsole.domain.config` with its key reader, so an
error names the file and the key the same way as every other config mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from omniconsole.domain.channels import CHANNEL_NAMES, Category, Channel
from omniconsole.domain.timeutil import format_duration

if TYPE_CHECKING:
    from omniconsole.domain.config import _Reader

#: what a block on the chosen channel does
ON_BLOCK_MODES = ("defer", "suppress", "switch")
#: how a step orders its channels: the list as written, or by the customer's affinity
SELECT_MODES = ("order", "affinity")
SEND_AT_MODES = ("best_hour",)
#: policy.toml keys this module reads
POLICY_KEYS = frozenset({"engagement", "on_block", "topic", "tracking"})
#: step keys this module reads
STEP_KEYS = frozenset({"select", "on_block", "send_at", "max_delay", "digest"})
#: how long a best-hour send may wait when the step does not say
DEFAULT_MAX_DELAY = timedelta(hours=24)

_TOPIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class EngagementSettings:
    """What affinity scores and best hours are computed from.

    `population` is each channel's engagements per message across all customers, and
    `population_hour` the local hour most customers engage: both are configured, not
    measured while running, so one customer's decisions depend only on that customer's
    history (and a replay gives the same ledger with any number of partitions).
    """

    window: timedelta
    window_label: str
    prior_weight: float
    population: tuple[tuple[Channel, float], ...]
    population_hour: int
    min_engagements: int

    def rate(self, channel: Channel) -> float:
        """The population's engagements per message on `channel` (0 when not given)."""
        for ch, value in self.population:
            if ch is channel:
                return value
        return 0.0

    def to_json(self) -> dict[str, Any]:
        """As `[engagement]` spells it."""
        return {
            "window": self.window_label,
            "prior_weight": self.prior_weight,
            "population": {str(c): r for c, r in self.population},
            "population_hour": self.population_hour,
            "min_engagements": self.min_engagements,
        }


@dataclass(frozen=True, slots=True)
class TopicDef:
    """A preference-centre topic: customers turn it off (per channel) for its journeys."""

    name: str
    label: str
    #: channels off for this topic until the customer turns them on
    default_off: frozenset[Channel]

    def to_json(self) -> dict[str, Any]:
        """As a `[[topic]]` table spells it."""
        table: dict[str, Any] = {"name": self.name, "label": self.label}
        if self.default_off:
            table["default_off"] = sorted(self.default_off)
        return table


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    """Engagement capture in live sends: click redirects and an open pixel."""

    clicks: bool
    opens: bool
    channels: frozenset[Channel]

    def to_json(self) -> dict[str, Any]:
        """As `[tracking]` spells it."""
        return {"clicks": self.clicks, "opens": self.opens, "channels": sorted(self.channels)}


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """The policy's channel-intelligence sections; None in `Policy` when none is given."""

    engagement: EngagementSettings | None = None
    on_block: tuple[tuple[Category, str], ...] = ()
    topics: tuple[TopicDef, ...] = ()
    tracking: TrackingSettings | None = None

    def block_mode(self, category: Category) -> str | None:
        """`[on_block]` for `category`, or None (SPEC §4 as written)."""
        for cat, mode in self.on_block:
            if cat is category:
                return mode
        return None

    def topic(self, name: str) -> TopicDef | None:
        """The topic called `name`, if configured."""
        for topic in self.topics:
            if topic.name == name:
                return topic
        return None

    def to_json(self) -> dict[str, Any]:
        """The sections as `policy.toml` spells them."""
        table: dict[str, Any] = {}
        if self.engagement is not None:
            table["engagement"] = self.engagement.to_json()
        if self.on_block:
            table["on_block"] = {str(c): m for c, m in self.on_block}
        if self.topics:
            table["topic"] = [t.to_json() for t in self.topics]
        if self.tracking is not None:
            table["tracking"] = self.tracking.to_json()
        return table


@dataclass(frozen=True, slots=True)
class StepChoice:
    """A step's channel rules beyond its list; None in `StepDef` when it has none."""

    select: str = "order"
    on_block: str | None = None
    send_at: str | None = None
    max_delay: timedelta = DEFAULT_MAX_DELAY
    digest: timedelta | None = None
    digest_label: str = ""

    def to_json(self) -> dict[str, Any]:
        """The step keys as a journey file spells them."""
        table: dict[str, Any] = {}
        if self.select != "order":
            table["select"] = self.select
        if self.on_block is not None:
            table["on_block"] = self.on_block
        if self.send_at is not None:
            table["send_at"] = self.send_at
            table["max_delay"] = format_duration(self.max_delay)
        if self.digest is not None:
            table["digest"] = self.digest_label or format_duration(self.digest)
        return table


def parse_channel_policy(r: _Reader) -> ChannelPolicy | None:
    """The channel sections of a policy table, or None when it has none."""
    if not any(r.has(key) for key in POLICY_KEYS):
        return None
    return ChannelPolicy(
        engagement=_engagement(r),
        on_block=_on_block(r),
        topics=_topics(r),
        tracking=_tracking(r),
    )


def _engagement(r: _Reader) -> EngagementSettings | None:
    e = r.sub("engagement")
    if e is None:
        return None
    e.check_keys({"window", "prior_weight", "population", "population_hour", "min_engagements"})
    window = e.duration("window", "30d")
    if window <= timedelta(0):
        raise e.fail("window", "must be longer than 0")
    label = str(e.table.get("window", "30d")).strip()
    weight = e.table.get("prior_weight", 4)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
        raise e.fail("prior_weight", f"must be a number > 0 (messages' worth), got {weight!r}")
    rates = e.sub("population")
    if rates is None:
        raise e.fail("population", "missing: each channel's engagements per message, e.g. "
                                   "{ email = 0.2, push = 0.1 }")  # fmt: skip
    population: list[tuple[Channel, float]] = []
    for name, value in rates.table.items():
        if name not in CHANNEL_NAMES:
            raise rates.fail(name, f"not a channel; allowed: {', '.join(sorted(CHANNEL_NAMES))}")
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise rates.fail(
                name, f"must be a number >= 0 (engagements per message), got {value!r}"
            )
        population.append((Channel(name), float(value)))
    hour = e.table.get("population_hour", 18)
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise e.fail("population_hour", f"must be a whole hour 0-23 (local time), got {hour!r}")
    least = e.table.get("min_engagements", 3)
    if not isinstance(least, int) or isinstance(least, bool) or least < 1:
        raise e.fail("min_engagements", f"must be a whole number >= 1, got {least!r}")
    return EngagementSettings(window, label, float(weight), tuple(sorted(population)), hour, least)


def _on_block(r: _Reader) -> tuple[tuple[Category, str], ...]:
    ob = r.sub("on_block")
    if ob is None:
        return ()
    ob.check_keys({"lifecycle", "promotional"})
    return tuple(
        (Category(name), ob.choice(name, ON_BLOCK_MODES))
        for name in ("lifecycle", "promotional")
        if ob.has(name)
    )


def _topics(r: _Reader) -> tuple[TopicDef, ...]:
    topics: list[TopicDef] = []
    for t in r.tables("topic"):
        t.check_keys({"name", "label", "default_off"})
        name = t.text("name")
        if not _TOPIC_NAME.fullmatch(name):
            raise t.fail("name", f"{name!r}: use lower-case letters, digits, '_' and '-'")
        if any(x.name == name for x in topics):
            raise t.fail("name", f"topic {name!r} is defined twice")
        off = t.names("default_off", CHANNEL_NAMES, "channel") if t.has("default_off") else ()
        topics.append(TopicDef(name, t.text("label", name), frozenset(Channel(c) for c in off)))
    return tuple(topics)


def _tracking(r: _Reader) -> TrackingSettings | None:
    tr = r.sub("tracking")
    if tr is None:
        return None
    tr.check_keys({"clicks", "opens", "channels"})
    flags = {}
    for key in ("clicks", "opens"):
        value = tr.table.get(key, True)
        if not isinstance(value, bool):
            raise tr.fail(key, f"must be true or false, got {value!r}")
        flags[key] = value
    channels = tr.names("channels", CHANNEL_NAMES, "channel") if tr.has("channels") else ("email",)
    return TrackingSettings(
        flags["clicks"], flags["opens"], frozenset(Channel(c) for c in channels)
    )


def parse_step_choice(st: _Reader, category: Category) -> StepChoice | None:
    """A step's channel rules, or None when it declares none."""
    if not any(st.has(key) for key in STEP_KEYS):
        return None
    select = st.choice("select", SELECT_MODES) if st.has("select") else "order"
    on_block = st.choice("on_block", ON_BLOCK_MODES) if st.has("on_block") else None
    if on_block is not None and category is Category.TRANSACTIONAL:
        raise st.fail("on_block", "transactional messages ignore caps and quiet hours: "
                                  "nothing blocks them")  # fmt: skip
    send_at = st.choice("send_at", SEND_AT_MODES) if st.has("send_at") else None
    max_delay = DEFAULT_MAX_DELAY
    if st.has("max_delay"):
        if send_at is None:
            raise st.fail("max_delay", 'only with send_at = "best_hour"')
        max_delay = st.duration("max_delay")
    digest: timedelta | None = None
    label = ""
    if st.has("digest"):
        if category is not Category.PROMOTIONAL:
            raise st.fail("digest", f"only promotional steps collapse into digests "
                                    f"(this journey is {category})")  # fmt: skip
        digest = st.duration("digest")
        if digest <= timedelta(0):
            raise st.fail("digest", "must be longer than 0")
        label = str(st.table["digest"]).strip()
    return StepChoice(select, on_block, send_at, max_delay, digest, label)
