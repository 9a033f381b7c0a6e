"""Widgets shared by the views: the status line and the `:`/`/` prompt."""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from omniconsole.tui.commands import COMMANDS

__all__ = ["COMMAND_WORDS", "PromptLine", "StatusLine", "ViewTable"]

#: what the command line suggests as one types (every command of `commands.COMMANDS`)
COMMAND_WORDS: tuple[str, ...] = tuple(f"{c.name} " if c.argument else c.name for c in COMMANDS)

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
            "journeys · handoffs · caps · channels · customer QUERY · decisions FILTER · help"
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


class KeyHints(Static):
    """The current screen's keys on one line: what Textual's Footer shows, as one widget.

    Textual's Footer builds a widget per key and re-styles every one of them on each
    view switch; with a dozen keys that was about half of what a key press cost.
    This renders the same bindings as one line of text, again only when they change.
    """

    DEFAULT_CSS = """
    KeyHints {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    """

    _oc_shown: Text | None = None

    def on_mount(self) -> None:
        """Follow the screen's bindings (runs on the app's loop)."""
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.render_keys()

    def on_unmount(self) -> None:
        """Stop following them."""
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self.render_keys()

    def on_resize(self) -> None:
        """The line adapts to the width (runs on the app's loop)."""
        self.render_keys()

    def render_keys(self) -> None:
        """Rebuild the line from the screen's active bindings, as wide as fits."""
        if not self.app.screen_stack:
            return  # the app is closing (a view made ready off screen may still resize)
        keys: list[tuple[str, str, bool]] = []
        shown: set[str] = set()
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in shown:
                continue
            shown.add(binding.action)
            keys.append((self.app.get_key_display(binding), binding.description, enabled))
        if self.app.ENABLE_COMMAND_PALETTE:
            keys.append(("^p", "palette", True))
        width = self.size.width or 80
        for layout in (_spacious, _compact, _keys_only):
            text = layout(keys)
            if text.cell_len <= width:
                break
        if text == self._oc_shown:
            return  # a view key re-announces the same keys: nothing to draw
        self._oc_shown = text
        self.update(text, layout=False)  # one docked line: its size never changes


def _spacious(keys: list[tuple[str, str, bool]]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for key, description, enabled in keys:
        text.append(f" {key} ", style="bold reverse")
        text.append(f" {description} ", style="" if enabled else "dim")
    return text


def _compact(keys: list[tuple[str, str, bool]]) -> Text:
    """Tighter, with the view keys 1-6 folded into one hint."""
    digits = [k for k in keys if k[0].isdigit()]
    folded: list[tuple[str, str, bool]] = []
    for entry in keys:
        if entry in digits:
            if entry is digits[0] and len(digits) > 1:
                folded.append((f"{digits[0][0]}-{digits[-1][0]}", "Views", True))
            elif len(digits) == 1:
                folded.append(entry)
            continue
        folded.append(entry)
    text = Text(no_wrap=True, overflow="ellipsis")
    for key, description, enabled in folded:
        if key == "^p":
            continue  # the palette is in the help; room for the view's own keys
        text.append(key, style="bold reverse")
        text.append(f" {description} ", style="" if enabled else "dim")
    return text


def _keys_only(keys: list[tuple[str, str, bool]]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for key, _description, _enabled in keys:
        text.append(key, style="bold reverse")
        text.append(" ")
    return text


class ViewTable(DataTable[str | Text]):
    """A DataTable that keeps its rendered lines when a restyle changes nothing.

    Textual restyles every widget of a screen each time the screen comes back (a view
    key), and DataTable then drops every rendered cell and line: a key press re-rendered
    each visible cell of every table, most of what it cost. Here a restyle only marks
    the table; at its next render the caches are dropped if what it is drawn with
    changed — its style rules, the colours it inherits, or the styles of its parts
    (cursor, header, hover, stripes), which follow the theme and the focus. (The parts'
    styles are settled after the restyle's notice, hence the check at render time.)
    """

    _oc_restyled = True
    _oc_drawn_with: object = None

    def _drawn_with(self) -> object:
        parts = tuple(
            self.get_component_rich_style(name, partial=True)
            for name in sorted(self.COMPONENT_CLASSES)
        )
        return (self.rich_style, self.styles.get_render_rules(), parts)

    def notify_style_update(self) -> None:
        """Mark the table restyled; its next render decides (runs on the app's loop)."""
        Widget.notify_style_update(self)  # the widget's own small style caches
        self._oc_restyled = True
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        """Drop the rendered cells first if the styles they were drawn with changed."""
        if self._oc_restyled:
            self._oc_restyled = False
            try:
                drawn_with = self._drawn_with()
            except KeyError:  # the parts' styles are not there yet (first render)
                drawn_with = None
            if drawn_with is None or drawn_with != self._oc_drawn_with:
                self._oc_drawn_with = drawn_with
                self._clear_caches()
        return super().render_lines(crop)
