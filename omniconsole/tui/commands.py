"""The command palette provider (Ctrl+P) and the `:` command-line parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from omniconsole.tui.app import ConsoleApp

__all__ = ["ConsoleCommands", "ParsedCommand", "parse_command"]

VIEW_ALIASES = {
    "journeys": "journeys",
    "journey": "journeys",
    "j": "journeys",
    "handoffs": "handoffs",
    "handoff": "handoffs",
    "h": "handoffs",
    "caps": "caps",
    "cap": "caps",
    "channels": "channels",
    "channel": "channels",
    "ch": "channels",
    "customer": "customer",
    "customers": "customer",
    "cust": "customer",
    "c": "customer",
}


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A `:` command: a view (with an optional argument) or an action."""

    action: str  # "view", "help", "theme", "pause", "faster", "slower", "quit", "unknown"
    view: str | None = None
    argument: str = ""


def parse_command(text: str) -> ParsedCommand:
    """Read `journeys`, `customer c-1`, `q`, … (case-insensitive words, argument kept)."""
    word, _, rest = text.strip().lstrip(":").partition(" ")
    key = word.casefold()
    if key in VIEW_ALIASES:
        return ParsedCommand("view", VIEW_ALIASES[key], rest.strip())
    if key in ("q", "quit", "exit"):
        return ParsedCommand("quit")
    if key in ("help", "?", "keys"):
        return ParsedCommand("help")
    if key in ("theme", "dark", "light"):
        return ParsedCommand("theme")
    if key in ("pause", "resume"):
        return ParsedCommand("pause")
    if key in ("faster", "slower"):
        return ParsedCommand(key)
    return ParsedCommand("unknown", argument=text.strip())


class ConsoleCommands(Provider):
    """Every console action by name, plus "Find customer …" for whatever is typed."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("ConsoleApp", self.app)
        items: list[tuple[str, Callable[[], object], str]] = [
            ("Journeys view", partial(app.show_view, "journeys"), "Journeys and conversions (1)"),
            ("Handoffs view", partial(app.show_view, "handoffs"), "Cross-channel handoffs (2)"),
            ("Caps view", partial(app.show_view, "caps"), "Fatigue governor usage (3)"),
            ("Channels view", partial(app.show_view, "channels"), "Channel stats, health (4)"),
            ("Customer pane", partial(app.show_view, "customer"), "Find a customer (5)"),
            ("Filter this view", app.action_filter, "Filter the current view (/)"),
            ("Command line", app.action_command_line, "Type a command (:)"),
            ("Toggle dark / light theme", app.action_toggle_theme, "Switch theme (t)"),
            ("Refresh now", app.action_refresh, "Poll the store now (r)"),
            ("Show keys", app.action_help, "Every key (?)"),
        ]
        if app.demo is not None:
            items += [
                ("Pause / resume demo", app.action_demo_pause, "space"),
                ("Demo faster", app.action_demo_faster, "+"),
                ("Demo slower", app.action_demo_slower, "-"),
            ]
        return items

    async def discover(self) -> Hits:
        """All commands, shown before anything is typed."""
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands matching `query`, and opening `query` as a customer."""
        matcher = self.matcher(query)
        app = cast("ConsoleApp", self.app)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        text = query.strip()
        if text:
            for prefix in ("customer ", "find "):
                if text.casefold().startswith(prefix):
                    text = text[len(prefix) :].strip()
            if text:
                yield Hit(
                    0.5,
                    f"Find customer {text!r}",
                    partial(app.open_customer, text),
                    help="Open the customer pane for this id, email or phone",
                )
