"""Message content per journey step and channel, from `config/templates/*.toml`.

One file per journey (the file's stem is the journey name); one table per step; one
sub-table per channel plus `default` for every channel without its own::

    [nudge_day3]
    properties = { sku = "" }           # event properties the templates use, with defaults

    [nudge_day3.default]
    subject = "Still there, ${first_name}?"
    text = "Finish setting up your account."

    [nudge_day3.default.handoff]        # used instead when the send is a handoff
    text = "Since ${handoff_phrase}, here is the next step."

A digest step (`digest = "6h"`, one message for several triggers) lists its items with
the step's `item` template, rendered per trigger from its properties, and a `digest`
table used instead when the message holds more than one item::

    [alert]
    properties = { product_name = "an item you viewed", price = "a lower price" }
    item = "${product_name} is now ${price}"

    [alert.default.digest]              # ${items}: the items; ${item_count}: how many
    text = "${item_count} price drops: ${items}"

Placeholders are `string.Template` (`${name}`). Every placeholder is checked when the
templates load, so a typo fails start-up, not a send. No placeholder ever renders
empty: a property a template uses needs a default that reads well in its place (an
empty one fails start-up, naming it), and an event that carries the property blank
gets the default too — never "Your order  is confirmed". HTML is rendered with every
value HTML-escaped. Pure: no I/O beyond reading the directory given.
"""

from __future__ import annotations

import html as html_lib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, NamedTuple

from omniconsole.domain.channels import CHANNEL_NAMES
from omniconsole.domain.messages import Handoff, Recipient

__all__ = [
    "BASE_VARIABLES",
    "DIGEST_VARIABLES",
    "HANDOFF_VARIABLES",
    "Rendered",
    "TemplateError",
    "TemplateSet",
    "handoff_phrase",
    "load_templates",
]

#: Variables every template may use.
BASE_VARIABLES: frozenset[str] = frozenset(
    {"first_name", "customer", "email", "journey", "step", "channel"}
)
#: Variables only a `handoff` table may use (they are empty otherwise).
HANDOFF_VARIABLES: frozenset[str] = frozenset(
    {"handoff_channel", "handoff_action", "handoff_phrase"}
)
#: Variables only a `digest` table may use: the items listed, and how many.
DIGEST_VARIABLES: frozenset[str] = frozenset({"items", "item_count"})
#: the property of a digest send that carries its triggers' properties
ITEMS_PROPERTY = "items"
DEFAULT_KEY = "default"
_FIELDS = ("subject", "text", "html")

_CHANNEL_NOUNS = {
    "email": "email",
    "sms": "text message",
    "whatsapp": "WhatsApp message",
    "rcs": "message",
    "push": "notification",
    "in_app": "in-app message",
}
_ACTION_PHRASES = {
    "opened": "you opened our {noun}",
    "clicked": "you clicked a link in our {noun}",
    "replied": "you replied to our {noun}",
}


class TemplateError(ValueError):
    """The templates are malformed, or a render asked for something that is not there."""


class Rendered(NamedTuple):
    """Rendered content for one message."""

    subject: str
    text: str
    html: str | None


def handoff_phrase(handoff: Handoff) -> str:
    """'you clicked a link in our email' — what the customer last did, in words."""
    noun = _CHANNEL_NOUNS.get(handoff.channel, handoff.channel)
    pattern = _ACTION_PHRASES.get(handoff.action, "you {action} our {noun}")
    return pattern.format(noun=noun, action=handoff.action)


@dataclass(frozen=True, slots=True)
class _Variant:
    subject: Template
    text: Template
    html: Template | None


@dataclass(frozen=True, slots=True)
class _Entry:
    plain: _Variant
    handoff: _Variant | None
    digest: _Variant | None = None


@dataclass(frozen=True, slots=True)
class _Step:
    properties: Mapping[str, str]
    entries: Mapping[str, _Entry]
    item: Template | None = None  # one item of a digest


class TemplateSet:
    """All loaded templates; `render` picks the channel's entry or the step's default."""

    def __init__(self, journeys: Mapping[str, Mapping[str, _Step]]) -> None:
        self._journeys = journeys

    def journeys(self) -> dict[str, list[str]]:
        """Journey name → step names that have templates."""
        return {j: sorted(steps) for j, steps in self._journeys.items()}

    def covers(self, journey: str, step: str, channel: str) -> bool:
        """Whether `render` would find content for this step on `channel`."""
        entries = self._journeys.get(journey, {}).get(step)
        return entries is not None and (
            channel in entries.entries or DEFAULT_KEY in entries.entries
        )

    def render(
        self,
        journey: str,
        step: str,
        channel: str,
        recipient: Recipient,
        handoff: Handoff | None = None,
        properties: Mapping[str, Any] | None = None,
        template: str | None = None,
    ) -> Rendered:
        """Render one message. Undeclared `properties` are ignored; declared ones missing
        from `properties` take the default from the template file. `template` names
        another step table to render instead (a variant's own text); `${step}` stays
        the step's name."""
        key = template or step
        step_templates = self._journeys.get(journey, {}).get(key)
        if step_templates is None:
            raise TemplateError(f"no templates for {journey}.{key}")
        entry = step_templates.entries.get(channel) or step_templates.entries.get(DEFAULT_KEY)
        if entry is None:
            raise TemplateError(f"no template for {journey}.{key} on {channel} and no default")
        values: dict[str, str] = dict(step_templates.properties)
        for name in step_templates.properties:
            value = None if properties is None else properties.get(name)
            if value is not None and str(value).strip():
                values[name] = str(value)  # a blank value keeps the default
        values.update(
            first_name=(recipient.first_name or "").strip() or "there",
            customer=recipient.customer,
            email=(recipient.email or "").strip() or "your email address",
            journey=journey,
            step=step,
            channel=channel,
            handoff_channel=handoff.channel if handoff else "",
            handoff_action=handoff.action if handoff else "",
            handoff_phrase=handoff_phrase(handoff) if handoff else "",
        )
        variant = entry.handoff if handoff is not None and entry.handoff else entry.plain
        escaped = {k: html_lib.escape(v) for k, v in values.items()}
        items = None if properties is None else properties.get(ITEMS_PROPERTY)
        if (
            entry.digest is not None
            and step_templates.item is not None
            and isinstance(items, list)
            and len(items) > 1
        ):
            variant = entry.digest
            texts = [_item(step_templates, item) for item in items]
            values.update(items="; ".join(texts), item_count=str(len(texts)))
            escaped.update(
                items="<ul>" + "".join(f"<li>{html_lib.escape(t)}</li>" for t in texts) + "</ul>",
                item_count=str(len(texts)),
            )
        return Rendered(
            subject=variant.subject.substitute(values),
            text=variant.text.substitute(values),
            html=variant.html.substitute(escaped) if variant.html is not None else None,
        )


def _item(step: _Step, item: object) -> str:
    """One item of a digest: the step's `item` template over that trigger's properties."""
    assert step.item is not None
    values = dict(step.properties)
    if isinstance(item, Mapping):
        for name in step.properties:
            value = item.get(name)
            if value is not None and str(value).strip():
                values[name] = str(value)
    return step.item.substitute(values)


def _compile(
    source: str, where: str, field_name: str, value: object, allowed: frozenset[str]
) -> Template:
    if not isinstance(value, str):
        raise TemplateError(f"{source}: [{where}] {field_name} must be a string")
    template = Template(value)
    if not template.is_valid():
        raise TemplateError(
            f"{source}: [{where}] {field_name}: malformed placeholder "
            "(write ${name}, and $$ for a literal $)"
        )
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        names = ", ".join(f"${{{u}}}" for u in unknown)
        raise TemplateError(
            f"{source}: [{where}] {field_name}: unknown variable {names}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return template


def _variant(
    source: str,
    where: str,
    table: Mapping[str, Any],
    allowed: frozenset[str],
    fallback: _Variant | None,
    needs_subject: bool,
) -> _Variant:
    extra = set(table) - set(_FIELDS) - ({"handoff", "digest"} if fallback is None else set())
    if extra:
        raise TemplateError(
            f"{source}: [{where}] unknown key(s) {', '.join(sorted(extra))}; "
            f"expected {', '.join(_FIELDS)}" + (", handoff, digest" if fallback is None else "")
        )
    compiled = {
        name: _compile(source, where, name, table[name], allowed)
        for name in _FIELDS
        if name in table
    }
    if fallback is None:
        if "text" not in compiled:
            raise TemplateError(f"{source}: [{where}] text is required")
        if needs_subject and "subject" not in compiled:
            raise TemplateError(f"{source}: [{where}] subject is required for email")
        return _Variant(
            subject=compiled.get("subject", Template("")),
            text=compiled["text"],
            html=compiled.get("html"),
        )
    return _Variant(
        subject=compiled.get("subject", fallback.subject),
        text=compiled.get("text", fallback.text),
        html=compiled.get("html", fallback.html),
    )


def _load_step(source: str, step: str, table: object) -> _Step:
    if not isinstance(table, dict):
        raise TemplateError(f"{source}: {step} must be a table ([{step}.<channel>])")
    raw_props = table.get("properties", {})
    if not isinstance(raw_props, dict) or not all(isinstance(v, str) for v in raw_props.values()):
        raise TemplateError(
            f"{source}: [{step}] properties must be a table of name = default string"
        )
    clash = sorted(set(raw_props) & (BASE_VARIABLES | HANDOFF_VARIABLES))
    if clash:
        raise TemplateError(f"{source}: [{step}] properties shadow built-in variables: {clash}")
    allowed = BASE_VARIABLES | frozenset(raw_props)
    item: Template | None = None
    if "item" in table:
        item = _compile(source, step, "item", table["item"], frozenset(raw_props))
    entries: dict[str, _Entry] = {}
    for key, value in table.items():
        if key in ("properties", "item"):
            continue
        if key != DEFAULT_KEY and key not in CHANNEL_NAMES:
            raise TemplateError(
                f"{source}: [{step}.{key}] is not a channel; expected one of "
                f"{', '.join(sorted(CHANNEL_NAMES))} or {DEFAULT_KEY}"
            )
        if not isinstance(value, dict):
            raise TemplateError(f"{source}: {step}.{key} must be a table")
        where = f"{step}.{key}"
        plain = _variant(source, where, value, allowed, None, key in (DEFAULT_KEY, "email"))
        handoff = None
        if "handoff" in value:
            if not isinstance(value["handoff"], dict):
                raise TemplateError(f"{source}: {where}.handoff must be a table")
            handoff = _variant(
                source,
                f"{where}.handoff",
                value["handoff"],
                allowed | HANDOFF_VARIABLES,
                plain,
                False,
            )
        digest = None
        if "digest" in value:
            if not isinstance(value["digest"], dict):
                raise TemplateError(f"{source}: {where}.digest must be a table")
            if item is None:
                raise TemplateError(
                    f"{source}: [{where}.digest] lists items, but [{step}] has no item "
                    'template (item = "...")'
                )
            digest = _variant(
                source, f"{where}.digest", value["digest"], allowed | DIGEST_VARIABLES, plain,
                False,
            )  # fmt: skip
        entries[key] = _Entry(plain=plain, handoff=handoff, digest=digest)
    if not entries:
        raise TemplateError(f"{source}: [{step}] has no channel or default table")
    checked = _templates_of(step, entries)
    if item is not None:
        checked.append((step, "item", item))
    for where, field_name, template in checked:
        for name in template.get_identifiers():
            if name in raw_props and not raw_props[name].strip():
                raise TemplateError(
                    f"{source}: [{where}] {field_name} uses ${{{name}}}, whose default in "
                    f"[{step}] properties is empty: an event without {name} would render a "
                    "gap; give a default that reads well in its place"
                )
    return _Step(properties=dict(raw_props), entries=entries, item=item)


def _templates_of(step: str, entries: Mapping[str, _Entry]) -> list[tuple[str, str, Template]]:
    """(where, field, template) of every template of a step, handoff variants included."""
    out: list[tuple[str, str, Template]] = []
    for key, entry in entries.items():
        variants = [(f"{step}.{key}", entry.plain)]
        if entry.handoff is not None:
            variants.append((f"{step}.{key}.handoff", entry.handoff))
        if entry.digest is not None:
            variants.append((f"{step}.{key}.digest", entry.digest))
        for where, variant in variants:
            for field_name in _FIELDS:
                template = getattr(variant, field_name)
                if template is not None:
                    out.append((where, field_name, template))
    return out


def load_templates(directory: Path | str) -> TemplateSet:
    """Load and validate every `*.toml` in `directory`; raise TemplateError on any problem."""
    root = Path(directory)
    if not root.is_dir():
        raise TemplateError(f"template directory {root} does not exist")
    journeys: dict[str, dict[str, _Step]] = {}
    for path in sorted(root.glob("*.toml")):
        source = str(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"{source}: not valid TOML: {exc}") from exc
        journeys[path.stem] = {
            step: _load_step(source, step, table) for step, table in document.items()
        }
    return TemplateSet(journeys)
