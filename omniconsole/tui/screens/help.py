"""`?`: every key and every `:` command of the console (the commands from their one table)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from omniconsole.tui.commands import COMMANDS

__all__ = ["KEYS", "HelpScreen"]

KEYS: tuple[tuple[str, str], ...] = (
    ("1-7", "journeys · handoffs · caps · channels · customer · decisions · outcomes"),
    (":", "command line (the commands below)"),
    ("/", "filter the view; Decisions: reason quiet_hours, since 2026-03-05, last 6h…"),
    ("Enter", "drill in: a journey's funnel; a count's decisions; a row's customer"),
    ("Esc", "back: clear the filter, close the funnel, leave a box, previous view"),
    ("n / p", "decisions and handoffs: older / newer page"),
    ("s / S", "sort the table by its next column / reverse it (or click a header)"),
    ("y / Y", "copy the row's customer id / message id"),
    ("f", "customer: find another (id, phone in any format, email, name)"),
    ("o / i", "customer: record an opt-out / opt-in they asked for (via serve)"),
    ("↑↓ PgUp PgDn Tab", "move in tables, scroll panes, next widget (mouse works)"),
    ("t / r", "dark or light theme / read the store now"),
    ("space + -", "demo and --tui: pause, faster, slower"),
    ("Ctrl+P", "command palette: every action by name"),
    ("? / q", "this help / quit"),
)


class HelpScreen(ModalScreen[None]):
    """A modal listing every key and command; Esc, q or ? closes it; ↑↓ scroll it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        """The key table and the command table, scrollable in a box that fits the screen."""
        keys = Table.grid(padding=(0, 1))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for key, what in KEYS:
            keys.add_row(key, what)
        commands = Table.grid(padding=(0, 1))
        commands.add_column(style="bold", no_wrap=True)
        commands.add_column()
        for command in COMMANDS:
            words = f":{command.name} {command.argument}".strip()
            commands.add_row(words, command.help)
        with VerticalScroll(id="help-box"):
            yield Static("Keys — Esc closes, ↑↓ scroll", classes="caption")
            yield Static(keys)
            yield Static("Commands", classes="caption")
            yield Static(commands)

    def on_mount(self) -> None:
        """Arrow keys scroll the box at once."""
        self.query_one("#help-box").focus()

    async def action_dismiss(self, result: None = None) -> None:
        """Close the help."""
        self.dismiss(result)
