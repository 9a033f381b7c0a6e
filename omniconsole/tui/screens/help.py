"""`?`: every key and command of the console."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["KEYS", "HelpScreen"]

KEYS: tuple[tuple[str, str], ...] = (
    (":", "command line: journeys · handoffs · caps · channels · customer QUERY · help · quit"),
    ("/", "filter the current view (Enter keeps the filter, Esc clears it)"),
    ("Enter", "drill in: journey → funnel; handoff / fatigued customer → customer pane"),
    ("Esc", "back: clear the filter, close the funnel, return to the previous view"),
    ("1 2 3 4 5", "journeys · handoffs · caps · channels · customer"),
    ("f", "customer pane: find another customer"),
    ("↑ ↓ PgUp PgDn", "move in tables and scroll panes (mouse works too)"),
    ("Tab", "next widget"),
    ("t", "switch between dark and light theme"),
    ("r", "refresh now"),
    ("space", "demo: pause / resume the replay"),
    ("+ / -", "demo: faster / slower (1 simulated hour per second up to full speed)"),
    ("Ctrl+P", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """A modal listing every key; any of Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        """The key table."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with VerticalScroll(id="help-box"):
            yield Static("Keys — Esc closes", classes="caption")
            yield Static(table)

    async def action_dismiss(self, result: None = None) -> None:
        """Close the help."""
        self.dismiss(result)
