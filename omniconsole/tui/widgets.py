"""Widgets shared by the views: the status line and the `:`/`/` prompt."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

__all__ = ["COMMAND_WORDS", "PromptLine", "StatusLine"]

COMMAND_WORDS: tuple[str, ...] = (
    "journeys",
    "handoffs",
    "caps",
    "channels",
    "customer ",
    "help",
    "theme",
    "pause",
    "faster",
    "slower",
    "quit",
)

PromptKind = Literal["command", "filter"]


class StatusLine(Static):
    """One line at the top: view, store state, simulated clock, counts."""


class PromptLine(Input):
    """The command line (`:`) or the filter (`/`), hidden until asked for."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    class Entered(Message):
        """The user pressed Enter on the prompt."""

        def __init__(self, kind: PromptKind, value: str) -> None:
            """`kind`: command or filter; `value`: the text."""
            super().__init__()
            self.kind: PromptKind = kind
            self.value = value

    class FilterChanged(Message):
        """The filter text changed (sent on every keystroke)."""

        def __init__(self, value: str) -> None:
            """`value`: the filter text."""
            super().__init__()
            self.value = value

    class Dismissed(Message):
        """The prompt was cancelled with Esc."""

        def __init__(self, kind: PromptKind) -> None:
            """`kind`: which prompt closed."""
            super().__init__()
            self.kind: PromptKind = kind

    def __init__(self, *, id: str | None = None) -> None:
        """A hidden prompt."""
        self._commands = SuggestFromList(COMMAND_WORDS, case_sensitive=False)
        super().__init__(id=id, suggester=self._commands)
        self.kind: PromptKind = "command"
        self.display = False

    def open(self, kind: PromptKind, value: str = "") -> None:
        """Show the prompt for `kind` with `value`, and focus it."""
        self.kind = kind
        self.suggester = self._commands if kind == "command" else None
        self.remove_class("-command", "-filter")
        self.add_class(f"-{kind}")
        self.placeholder = (
            "journeys · handoffs · caps · channels · customer ID/EMAIL/PHONE · help · quit"
            if kind == "command"
            else "filter this view (Enter keeps it, Esc clears it)"
        )
        self.value = value
        self.display = True
        self.focus()

    def close(self) -> None:
        """Hide the prompt."""
        self.display = False

    def on_input_changed(self, event: Input.Changed) -> None:
        """Live filtering."""
        event.stop()
        if self.kind == "filter":
            self.post_message(self.FilterChanged(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Hand the text to the screen."""
        event.stop()
        self.close()
        self.post_message(self.Entered(self.kind, event.value.strip()))

    def action_cancel(self) -> None:
        """Esc: close; a filter is cleared."""
        self.close()
        if self.kind == "filter":
            self.post_message(self.FilterChanged(""))
        self.post_message(self.Dismissed(self.kind))
