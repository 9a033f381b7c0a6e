"""The policy (SPEC §4) and journeys (SPEC §5) loaded from a config folder, validated.

Any mistake refuses to start with one message naming the file, the key and the
allowed values. The files are TOML so operators can comment them.

Over 400 lines: the policy and journey types, their JSON round trip and their
validation are one contract and change together; the channel rules' own keys live in
`channel_config`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import time, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from omniconsole.domain.channel_config import (
    POLICY_KEYS as CHANNEL_POLICY_KEYS,
)
from omniconsole.domain.channel_config import (
    STEP_KEYS as CHANNEL_STEP_KEYS,
)
from omniconsole.domain.channel_config import (
    ChannelPolicy,
    StepChoice,
    parse_channel_policy,
    parse_step_choice,
)
from omniconsole.domain.channels import CATEGORY_NAMES, CHANNEL_NAMES, Category, Channel
from omniconsole.domain.experiments import (
    DEFAULT_GLOBAL_SALT,
    DEFAULT_JOURNEY_SALT,
    ControlGroup,
    VariantDef,
    parse_control,
    parse_variants,
)
from omniconsole.domain.timeutil import TimeFormatError, format_duration, parse_duration


class ConfigError(ValueError):
    """The config folder has a mistake; the message names file, key and allowed values."""


@dataclass(frozen=True, slots=True)
class CapRule:
    """At most `limit` capped sends in any rolling `window` on `scope` ('all' or a channel)."""

    scope: str
    window: timedelta
    limit: int
    label: str = ""  # the window as the config spells it ("24h", "7d")

    @property
    def reason(self) -> str:
        """Ledger reason code, e.g. `cap:all:24h`, with the window spelt as configured."""
        return f"cap:{self.scope}:{self.label or format_duration(self.window)}"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local-time window in which capped sends on some channels are deferred."""

    start: time
    end: time
    channels: frozenset[Channel]
    categories: frozenset[Category]


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    """No message of `categories` within `window` after event `after_event`."""

    after_event: str
    window: timedelta
    categories: frozenset[Category]
    reason: str  # ledger code, e.g. suppression:support_ticket


@dataclass(frozen=True, slots=True)
class Policy:
    """The fatigue governor's rules."""

    capped_categories: frozenset[Category]
    uncapped_channels: frozenset[Channel]
    caps: tuple[CapRule, ...]
    quiet_hours: QuietHours | None
    suppressions: tuple[SuppressionRule, ...]
    max_deferral: timedelta
    #: engagement, on_block, topics, tracking (`domain.channel_config`); None: all off
    channel_policy: ChannelPolicy | None = None
    #: workspace-wide control group, held out of every non-transactional journey
    global_control: ControlGroup | None = None

    #: how far back cap usage matters; derived from `caps` when the policy is built
    longest_window: timedelta = field(init=False)

    def __post_init__(self) -> None:
        longest = max((c.window for c in self.caps), default=timedelta(0))
        object.__setattr__(self, "longest_window", longest)

    def to_json(self) -> dict[str, Any]:
        """The policy as `policy.toml` spells it (`from_json` reads it back)."""
        qh = self.quiet_hours
        table: dict[str, Any] = {
            "capped_categories": sorted(self.capped_categories),
            "uncapped_channels": sorted(self.uncapped_channels),
            "cap": [
                {"scope": c.scope, "window": c.label or format_duration(c.window), "limit": c.limit}
                for c in self.caps
            ],
            "suppression": [
                {
                    "after_event": s.after_event,
                    "window": format_duration(s.window),
                    "categories": sorted(s.categories),
                    "reason": s.reason.removeprefix("suppression:"),
                }
                for s in self.suppressions
            ],
            "deferral": {"max_after_due": format_duration(self.max_deferral)},
        }
        if qh is not None:
            table["quiet_hours"] = {
                "start": qh.start.strftime("%H:%M"),
                "end": qh.end.strftime("%H:%M"),
                "channels": sorted(qh.channels),
                "categories": sorted(qh.categories),
            }
        if self.channel_policy is not None:
            table.update(self.channel_policy.to_json())
        if self.global_control is not None:
            table["global_control"] = self.global_control.to_json()
        return table

    @classmethod
    def from_json(cls, table: dict[str, Any], source: str = "policy (stored)") -> Policy:
        """The policy `to_json` wrote, validated as `policy.toml` is."""
        return parse_policy(table, source)


ENTRY_RULES = ("once", "every", "one_live")


@dataclass(frozen=True, slots=True)
class StepDef:
    """One step: when it comes due, and the channels it may use in order of preference.

    Exactly one trigger: at entry (`after` = 0), `after` a delay from entry, or `on_event`
    (the first such event of the instance). `unless_since_entry`: event names that,
    once seen since entry, make the step send nothing.
    """

    name: str
    channels: tuple[Channel, ...]
    after: timedelta | None
    on_event: str | None
    unless_since_entry: tuple[str, ...]
    #: select, on_block, send_at, digest (`domain.channel_config`); None: the list as is
    choice: StepChoice | None = None


@dataclass(frozen=True, slots=True)
class JourneyDef:
    """A journey: how customers enter, the steps, and its goal."""

    name: str
    category: Category
    entry_event: str
    entry: str  # once | every | one_live
    lifetime: timedelta | None
    goal_event: str | None
    steps: tuple[StepDef, ...]
    source: str
    #: the preference-centre topic its messages belong to (a `[[topic]]` of the policy)
    topic: str | None = None
    #: this journey's own control group (never on a transactional journey)
    holdout: ControlGroup | None = None
    #: named splits of the treatment customers, each overriding some steps
    variants: tuple[VariantDef, ...] = ()

    @property
    def salt(self) -> str:
        """The salt of this journey's holdout and variant assignment."""
        return self.holdout.salt if self.holdout is not None else DEFAULT_JOURNEY_SALT

    def step(self, name: str) -> StepDef:
        """The step called `name`."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def watched_events(self) -> frozenset[str]:
        """Events an instance must remember having seen since entry."""
        names: set[str] = set()
        for step in self.steps:
            names.update(step.unless_since_entry)
        return frozenset(names)

    def to_json(self) -> dict[str, Any]:
        """The journey as its TOML file spells it (`from_json` reads it back)."""
        entry: dict[str, Any] = {"event": self.entry_event, "rule": self.entry}
        if self.lifetime is not None:
            entry["lifetime"] = format_duration(self.lifetime)
        table: dict[str, Any] = {"name": self.name, "category": str(self.category), "entry": entry}
        if self.goal_event is not None:
            table["goal"] = {"event": self.goal_event}
        steps: list[dict[str, Any]] = []
        for s in self.steps:
            step: dict[str, Any] = {"name": s.name, "channels": [str(c) for c in s.channels]}
            if s.after is not None:
                step["after"] = format_duration(s.after)
            if s.on_event is not None:
                step["on_event"] = s.on_event
            if s.unless_since_entry:
                step["unless_since_entry"] = list(s.unless_since_entry)
            if s.choice is not None:
                step.update(s.choice.to_json())
            steps.append(step)
        table["step"] = steps
        if self.topic is not None:
            table["topic"] = self.topic
        if self.holdout is not None:
            table["holdout"] = self.holdout.to_json()
        if self.variants:
            table["variant"] = [v.to_json() for v in self.variants]
        return table

    @classmethod
    def from_json(cls, table: dict[str, Any], source: str = "journey (stored)") -> JourneyDef:
        """The journey `to_json` wrote, validated as a journey file is."""
        return parse_journey(table, source)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything the engine reads from the config folder."""

    policy: Policy
    journeys: tuple[JourneyDef, ...]
    directory: Path

    def journeys_entered_by(self, event: str) -> tuple[JourneyDef, ...]:
        """Journeys whose entry event is `event`."""
        return tuple(j for j in self.journeys if j.entry_event == event)


class _Reader:
    """Reads typed values from one TOML table, naming file and key in every error."""

    def __init__(self, source: str, table: dict[str, Any], prefix: str = "") -> None:
        self.source = source  # the file name, or where stored config came from
        self.table = table
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.source}: key '{self.prefix}{key}'"

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self.table

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"unknown key; allowed keys: {', '.join(sorted(allowed))}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        return self.text(key) if key in self.table else None

    def whole(self, key: str) -> int:
        value = self.table.get(key)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(key, f"must be a whole number >= 0, got {value!r}")
        return value

    def duration(self, key: str, default: str | None = None) -> timedelta:
        raw = self.table.get(key, default)
        try:
            return parse_duration(raw) if raw is not None else _missing(self, key)
        except TimeFormatError as exc:
            raise self.fail(key, str(exc)) from None

    def clock(self, key: str) -> time:
        raw = self.text(key)
        try:
            return time.fromisoformat(raw)
        except ValueError:
            raise self.fail(key, f"must be a time of day like 21:00, got {raw!r}") from None

    def choice(self, key: str, allowed: tuple[str, ...] | frozenset[str]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise self.fail(key, f"unknown value {value!r}; allowed: {', '.join(sorted(allowed))}")
        return value

    def names(self, key: str, allowed: frozenset[str], what: str) -> tuple[str, ...]:
        raw = self.table.get(key)
        if raw is None:
            raise self.fail(key, "missing")
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise self.fail(key, f"must be a list of {what} names")
        for value in raw:
            if value not in allowed:
                raise self.fail(
                    key, f"unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}"
                )
        if len(set(raw)) != len(raw):
            raise self.fail(key, f"lists a {what} twice")
        return tuple(raw)

    def strings(self, key: str) -> tuple[str, ...]:
        raw = self.table.get(key, [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
            raise self.fail(key, "must be a string or a list of strings")
        return tuple(raw)

    def tables(self, key: str) -> list[_Reader]:
        raw = self.table.get(key, [])
        if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
            raise self.fail(key, "must be an array of tables ([[...]])")
        return [_Reader(self.source, t, f"{self.prefix}{key}[{i}].") for i, t in enumerate(raw)]

    def sub(self, key: str) -> _Reader | None:
        raw = self.table.get(key)
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise self.fail(key, "must be a table")
        return _Reader(self.source, raw, f"{self.prefix}{key}.")


def _missing(reader: _Reader, key: str) -> timedelta:
    raise reader.fail(key, "missing")


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None


def load_policy(path: Path) -> Policy:
    """Read and validate `policy.toml`."""
    return parse_policy(_load_toml(path), path.name)


def parse_policy(table: dict[str, Any], source: str) -> Policy:
    """Validate a policy table (`policy.toml` as read); errors name `source`."""
    r = _Reader(source, table)
    r.check_keys(
        {
            "capped_categories",
            "uncapped_channels",
            "cap",
            "quiet_hours",
            "suppression",
            "deferral",
            "global_control",
        }
        | CHANNEL_POLICY_KEYS
    )
    capped = frozenset(
        Category(c) for c in r.names("capped_categories", CATEGORY_NAMES, "category")
    )
    uncapped = frozenset(Channel(c) for c in r.names("uncapped_channels", CHANNEL_NAMES, "channel"))
    caps: list[CapRule] = []
    for cap in r.tables("cap"):
        cap.check_keys({"scope", "window", "limit"})
        scope = cap.choice("scope", frozenset({"all"} | CHANNEL_NAMES))
        window = cap.duration("window")
        if window <= timedelta(0):
            raise cap.fail("window", "must be longer than 0")
        label = str(cap.table["window"]).strip()
        caps.append(CapRule(scope, window, cap.whole("limit"), label))
    quiet: QuietHours | None = None
    qh = r.sub("quiet_hours")
    if qh is not None:
        qh.check_keys({"start", "end", "channels", "categories"})
        quiet = QuietHours(
            start=qh.clock("start"),
            end=qh.clock("end"),
            channels=frozenset(Channel(c) for c in qh.names("channels", CHANNEL_NAMES, "channel")),
            categories=frozenset(
                Category(c) for c in qh.names("categories", CATEGORY_NAMES, "category")
            ),
        )
    suppressions: list[SuppressionRule] = []
    for sup in r.tables("suppression"):
        sup.check_keys({"after_event", "window", "categories", "reason"})
        suppressions.append(
            SuppressionRule(
                after_event=sup.text("after_event"),
                window=sup.duration("window"),
                categories=frozenset(
                    Category(c) for c in sup.names("categories", CATEGORY_NAMES, "category")
                ),
                reason="suppression:" + sup.text("reason"),
            )
        )
    deferral = r.sub("deferral")
    max_deferral = timedelta(hours=48)
    if deferral is not None:
        deferral.check_keys({"max_after_due"})
        max_deferral = deferral.duration("max_after_due")
    control = r.sub("global_control")
    return Policy(
        capped,
        uncapped,
        tuple(caps),
        quiet,
        tuple(suppressions),
        max_deferral,
        parse_channel_policy(r),
        None if control is None else parse_control(control, DEFAULT_GLOBAL_SALT),
    )


def load_journey(path: Path) -> JourneyDef:
    """Read and validate one journey file."""
    return parse_journey(_load_toml(path), path.name)


def parse_journey(table: dict[str, Any], source: str) -> JourneyDef:
    """Validate a journey table (a journey file as read); errors name `source`."""
    r = _Reader(source, table)
    r.check_keys({"name", "category", "entry", "goal", "step", "topic", "holdout", "variant"})
    name = r.text("name")
    category = Category(r.choice("category", CATEGORY_NAMES))
    entry = r.sub("entry")
    if entry is None:
        raise r.fail("entry", "missing (needs event and rule)")
    entry.check_keys({"event", "rule", "lifetime"})
    entry_event = entry.text("event")
    rule = entry.choice("rule", ENTRY_RULES)
    lifetime = entry.duration("lifetime") if entry.has("lifetime") else None
    goal_event: str | None = None
    goal = r.sub("goal")
    if goal is not None:
        goal.check_keys({"event"})
        goal_event = goal.text("event")
    steps: list[StepDef] = []
    step_tables = r.tables("step")
    if not step_tables:
        raise r.fail("step", "a journey needs at least one [[step]]")
    for st in step_tables:
        st.check_keys({"name", "channels", "after", "on_event", "unless_since_entry"}
                      | CHANNEL_STEP_KEYS)  # fmt: skip
        step_name = st.text("name")
        if any(s.name == step_name for s in steps):
            raise st.fail("name", f"step {step_name!r} is defined twice")
        channels = tuple(Channel(c) for c in st.names("channels", CHANNEL_NAMES, "channel"))
        if not channels:
            raise st.fail("channels", "needs at least one channel")
        after = st.duration("after") if st.has("after") else None
        on_event = st.opt_str("on_event")
        if (after is None) == (on_event is None):
            raise st.fail(
                "after", "give exactly one of 'after' (e.g. \"0h\", \"72h\") or 'on_event'"
            )
        steps.append(
            StepDef(step_name, channels, after, on_event, st.strings("unless_since_entry"),
                    parse_step_choice(st, category))
        )  # fmt: skip
    topic = r.opt_str("topic")
    holdout = r.sub("holdout")
    if holdout is not None and category is Category.TRANSACTIONAL:
        raise r.fail("holdout", "transactional journeys are never held out; remove [holdout]")
    return JourneyDef(
        name,
        category,
        entry_event,
        rule,
        lifetime,
        goal_event,
        tuple(steps),
        source,
        topic,
        None if holdout is None else parse_control(holdout, DEFAULT_JOURNEY_SALT),
        parse_variants(r.tables("variant"), tuple(steps)),
    )


def load_config(directory: Path) -> EngineConfig:
    """Load `policy.toml` and every `journeys/*.toml` from `directory`."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: config folder not found")
    policy = load_policy(directory / "policy.toml")
    journey_dir = directory / "journeys"
    files = sorted(journey_dir.glob("*.toml")) if journey_dir.is_dir() else []
    if not files:
        raise ConfigError(f"{journey_dir}: no journey files (*.toml)")
    journeys: list[JourneyDef] = []
    for path in files:
        journey = load_journey(path)
        if any(j.name == journey.name for j in journeys):
            raise ConfigError(f"{path.name}: key 'name': journey {journey.name!r} is defined twice")
        journeys.append(journey)
    check_channel_rules(policy, journeys)
    return EngineConfig(policy, tuple(journeys), directory)


def check_channel_rules(policy: Policy, journeys: list[JourneyDef]) -> None:
    """What one file cannot check alone: a journey's topic is a policy `[[topic]]`, a
    topic is transactional for all its journeys or none, and affinity and best-hour
    steps have the policy's `[engagement]` to learn from."""
    chan = policy.channel_policy
    topics = {} if chan is None else {t.name: t for t in chan.topics}
    kinds: dict[str, tuple[bool, str]] = {}
    for journey in journeys:
        if journey.topic is not None:
            if journey.topic not in topics:
                allowed = ", ".join(sorted(topics)) or "none: add [[topic]] to policy.toml"
                raise ConfigError(
                    f"{journey.source}: key 'topic': unknown topic {journey.topic!r}; "
                    f"topics in policy.toml: {allowed}"
                )
            transactional = journey.category is Category.TRANSACTIONAL
            seen = kinds.setdefault(journey.topic, (transactional, journey.name))
            if seen[0] != transactional:
                raise ConfigError(
                    f"{journey.source}: key 'topic': topic {journey.topic!r} holds the "
                    f"transactional and non-transactional journeys {seen[1]!r} and "
                    f"{journey.name!r}; a transactional topic cannot be turned off, so it "
                    "may hold only transactional journeys"
                )
        for i, step in enumerate(journey.steps):
            choice = step.choice
            learns = choice is not None and (
                choice.select == "affinity" or choice.send_at is not None
            )
            if learns and (chan is None or chan.engagement is None):
                key = "select" if choice is not None and choice.select == "affinity" else "send_at"
                raise ConfigError(
                    f"{journey.source}: key 'step[{i}].{key}': needs an [engagement] table in "
                    "policy.toml (the history window and the population's rates and hour)"
                )


def shipped_config_dir() -> Path:
    """The config folder shipped inside the package (`config/` in a checkout).

    Read through `importlib.resources`, so it is found the same way in a checkout, an
    editable install and an installed wheel. omniconsole is installed as files (not a
    zip), so the resource is a real folder.
    """
    folder = files("omniconsole") / "shipped_config"
    if not isinstance(folder, Path) or not (folder / "policy.toml").is_file():
        raise ConfigError(f"the shipped config is missing from the installed package: {folder}")
    return folder
