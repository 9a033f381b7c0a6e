"""The `:` commands (one table: the parser, the help, the errors and the palette read it).

`COMMANDS` lists every command with its words and what it does; `parse_command` reads
a typed line against it, so a command cannot exist without being in the help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from omniconsole.tui.app import ConsoleApp

__all__ = [
    "COMMANDS",
    "Command",
    "ConsoleCommands",
    "ParsedCommand",
    "command_list",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class Command:
    """One `:` command: its name, other words for it, its argument, what it does."""

    name: str
    action: str  # "view", or the action's name
    help: str
    aliases: tuple[str, ...] = ()
    argument: str = ""
    view: str | None = None


COMMANDS: tuple[Command, ...] = (
    Command("journeys", "view", "journeys and their funnels (1)", ("journey", "j"), view="journeys"),
    Command("handoffs", "view", "cross-channel handoffs; /email sms filters a pair (2)",
            ("handoff", "h"), "[FROM TO]", "handoffs"),
    Command("caps", "view", "the fatigue governor: caps, reasons, most fatigued (3)", ("cap",),
            view="caps"),
    Command("channels", "view", "decisions and health per channel (4)", ("channel", "ch"),
            view="channels"),
    Command("customer", "view", "find a customer by id, phone, email or name (5)",
            ("customers", "cust", "c", "find"), "QUERY", "customer"),
    Command("decisions", "view", "every decision, filtered and paged (6)",
            ("decision", "d", "activity", "ledger"), "[FILTER]", "decisions"),
    Command("outcomes", "view", "control groups against treatment: the lift of each journey"
            " and variant (7)", ("outcome", "lift", "holdouts"), view="outcomes"),
    Command("optout", "optout", "customer: record an opt-out the customer asked for",
            ("opt-out", "unsubscribe"), "CHANNEL"),
    Command("optin", "optin", "customer: record an opt-in the customer asked for",
            ("opt-in", "subscribe"), "CHANNEL"),
    Command("help", "help", "every key and command", ("?", "keys")),
    Command("theme", "theme", "switch between dark and light", ("dark", "light")),
    Command("refresh", "refresh", "read the store now", ("r",)),
    Command("pause", "pause", "demo and --tui: pause / resume the replay", ("resume",)),
    Command("faster", "faster", "demo and --tui: replay faster"),
    Command("slower", "slower", "demo and --tui: replay slower"),
    Command("quit", "quit", "leave the console", ("q", "exit")),
)  # fmt: skip

_BY_WORD: dict[str, Command] = {
    word: command for command in COMMANDS for word in (command.name, *command.aliases)
}


def command_list() -> str:
    """Every command, as the error for an unknown one lists them."""
    return " · ".join(f"{c.name} {c.argument}".strip() for c in COMMANDS)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A `:` command line: the command (None: unknown) and its argument."""

    command: Command | None
    argument: str = ""
    text: str = ""

    @property
    def action(self) -> str:
        """The command's action ("view", "quit", …), "unknown" when there is none."""
        return "unknown" if self.command is None else self.command.action

    @property
    def view(self) -> str | None:
        """The view the command opens, if any."""
        return None if self.command is None else self.command.view


def parse_command(text: str) -> ParsedCommand:
    """Read `journeys`, `customer c-1`, `decisions reason quiet_hours`, `q`, …"""
    stripped = text.strip().lstrip(":").strip()
    word, _, rest = stripped.partition(" ")
    return ParsedCommand(_BY_WORD.get(word.casefold()), rest.strip(), stripped)


class ConsoleCommands(Provider):
    """Every console action by name, plus "Find customer …" for whatever is typed."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("ConsoleApp", self.app)
        items: list[tuple[str, Callable[[], object], str]] = []
        for command in COMMANDS:
            if command.action in ("pause", "faster", "slower") and app.demo is None:
                continue
            if command.argument and command.action != "view":
                continue  # needs an argument: typed on the command line
            items.append(
                (command.name.capitalize(), partial(app.run_command, command.name), command.help)
            )
        items += [
            ("Filter this view", app.action_filter, "Filter the current view (/)"),
            ("Command line", app.action_command_line, "Type a command (:)"),
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
                    help="Open the customer pane for this id, phone, email or name",
                )
