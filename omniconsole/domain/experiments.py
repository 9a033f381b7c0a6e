"""Control groups and variants as the config declares them (holdouts, A/B splits).

Three optional declarations, all off in the shipped config:

- `[global_control]` in `policy.toml` — a workspace-wide share of customers held out
  of every non-transactional journey (as Braze's Global Control Group);
- `[holdout]` in a journey file — that journey's own control share;
- `[[variant]]` in a journey file — named splits of the journey's treatment customers,
  each overriding some steps' channels, `after` delay or template.

Each assignment is a stable hash of the customer, the journey and a *salt*
(`omniconsole.domain.assignment`). The salt is a config key so an operator can draw a
fresh control group on purpose: `[global_control] salt` (default `global-control`)
and a journey's `[holdout] salt` (default `holdout`; its variants use the same salt).

Parsing lives here, called by `omniconsole.domain.config` with its key reader, so
errors name the file and key the same way as every other config mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from omniconsole.domain.channels import CHANNEL_NAMES, Channel
from omniconsole.domain.timeutil import format_duration

if TYPE_CHECKING:
    from omniconsole.domain.config import StepDef, _Reader

#: the salt of the global control group when `policy.toml` does not name one
DEFAULT_GLOBAL_SALT = "global-control"
#: a journey's salt (holdout and variants) when its `[holdout]` does not name one
DEFAULT_JOURNEY_SALT = "holdout"
#: the treatment customers of a journey with variants who are in none of them
BASE_VARIANT = "base"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ControlGroup:
    """Customers whose hash with `salt` falls below `share` are held out."""

    share: float
    salt: str

    def to_json(self) -> dict[str, Any]:
        """As the TOML table spells it."""
        return {"share": self.share, "salt": self.salt}


@dataclass(frozen=True, slots=True)
class StepOverride:
    """What a variant changes in one step; None keeps the journey's own value."""

    step: str
    channels: tuple[Channel, ...] | None = None
    after: timedelta | None = None
    template: str | None = None  # a step table of the journey's template file

    def to_json(self) -> dict[str, Any]:
        """As a `[[variant.step]]` table spells it."""
        table: dict[str, Any] = {"name": self.step}
        if self.channels is not None:
            table["channels"] = [str(c) for c in self.channels]
        if self.after is not None:
            table["after"] = format_duration(self.after)
        if self.template is not None:
            table["template"] = self.template
        return table


@dataclass(frozen=True, slots=True)
class VariantDef:
    """A named share of a journey's treatment customers with some steps overridden."""

    name: str
    share: float
    steps: tuple[StepOverride, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As a `[[variant]]` table spells it."""
        table: dict[str, Any] = {"name": self.name, "share": self.share}
        if self.steps:
            table["step"] = [s.to_json() for s in self.steps]
        return table


def _share(reader: _Reader, key: str, *, zero_ok: bool) -> float:
    value = reader.table.get(key)
    if value is None:
        raise reader.fail(key, "missing")
    low = "0 <= share < 1" if zero_ok else "0 < share <= 1"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise reader.fail(key, f"must be a number with {low}, got {value!r}")
    share = float(value)
    ok = (0.0 <= share < 1.0) if zero_ok else (0.0 < share <= 1.0)
    if not ok:
        raise reader.fail(key, f"must be a number with {low}, got {value!r}")
    return share


def parse_control(reader: _Reader, default_salt: str) -> ControlGroup:
    """A `[global_control]` or `[holdout]` table."""
    reader.check_keys({"share", "salt"})
    return ControlGroup(_share(reader, "share", zero_ok=True), reader.text("salt", default_salt))


def parse_variants(readers: list[_Reader], steps: tuple[StepDef, ...]) -> tuple[VariantDef, ...]:
    """The `[[variant]]` tables of a journey whose steps are `steps`."""
    variants: list[VariantDef] = []
    total = 0.0
    by_name = {s.name: s for s in steps}
    for vr in readers:
        vr.check_keys({"name", "share", "step"})
        name = vr.text("name")
        if not _NAME.fullmatch(name) or name == BASE_VARIANT:
            raise vr.fail(
                "name",
                f"{name!r} is not a variant name: use letters, digits, '_' and '-', "
                f"and not {BASE_VARIANT!r} (the journey as written)",
            )
        if any(v.name == name for v in variants):
            raise vr.fail("name", f"variant {name!r} is defined twice")
        share = _share(vr, "share", zero_ok=False)
        total += share
        if total > 1.0 + 1e-9:
            raise vr.fail("share", "the variants' shares add up to more than 1")
        overrides: list[StepOverride] = []
        for sr in vr.tables("step"):
            sr.check_keys({"name", "channels", "after", "template"})
            step_name = sr.text("name")
            base = by_name.get(step_name)
            if base is None:
                raise sr.fail(
                    "name", f"no step {step_name!r} in this journey; steps: {', '.join(by_name)}"
                )
            if any(o.step == step_name for o in overrides):
                raise sr.fail("name", f"step {step_name!r} is overridden twice in this variant")
            channels: tuple[Channel, ...] | None = None
            if sr.has("channels"):
                channels = tuple(Channel(c) for c in sr.names("channels", CHANNEL_NAMES, "channel"))
                if not channels:
                    raise sr.fail("channels", "needs at least one channel")
            after: timedelta | None = None
            if sr.has("after"):
                if base.after is None:
                    raise sr.fail(
                        "after",
                        f"step {step_name!r} comes due on_event; a variant can change "
                        "'after' only of a step timed by 'after'",
                    )
                after = sr.duration("after")
            template = sr.opt_str("template")
            if channels is None and after is None and template is None:
                raise sr.fail("name", "override at least one of channels, after, template")
            overrides.append(StepOverride(step_name, channels, after, template))
        variants.append(VariantDef(name, share, tuple(overrides)))
    return tuple(variants)
