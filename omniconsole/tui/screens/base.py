"""The base of every view: status line, body, prompt and footer, fed by snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from omniconsole.tui.present import status_message
from omniconsole.tui.snapshot import Snapshot
from omniconsole.tui.widgets import KeyHints, PromptLine, StatusLine

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ConsoleHost", "ViewScreen", "fill_table", "matches_filter"]


class ConsoleHost(Protocol):
    """What views may ask of the app."""

    latest: Snapshot | None
    customer_query: str | None

    def open_customer(self, query: str) -> None:
        """Show the customer pane for `query`."""

    def run_command(self, text: str) -> None:
        """Run a `:` command line."""

    def status_text(self, snapshot: Snapshot | None, view: str) -> Text:
        """The status line for `view`."""

    def go_back(self) -> None:
        """Return to the previous view."""


def matches_filter(text: str, needle: str) -> bool:
    """Every word of `needle` occurs in `text` (case-insensitive)."""
    hay = text.casefold()
    return all(word in hay for word in needle.casefold().split())


def fill_table(
    table: DataTable[str | Text],
    rows: Sequence[tuple[str, Sequence[str | Text]]],
) -> None:
    """Replace the rows of `table` (keyed) when they changed, keeping the cursor's row."""
    signature = [(key, tuple(str(c) for c in cells)) for key, cells in rows]
    if getattr(table, "_oc_signature", None) == signature:
        return
    table._oc_signature = signature  # type: ignore[attr-defined]
    cursor_key: str | None = None
    if table.row_count and 0 <= table.cursor_row < table.row_count:
        cursor_key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
    old_row = table.cursor_row
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    keys = [key for key, _ in rows]
    if cursor_key in keys:
        table.move_cursor(row=keys.index(cursor_key), animate=False)
    elif rows:
        table.move_cursor(row=min(old_row, len(rows) - 1), animate=False)


class ViewScreen(Screen[None]):
    """A view of the store. Subclasses compose `compose_body` and implement `render_snapshot`.

    All methods run on the event loop.
    """

    VIEW: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        """An empty view; it fills from the app's latest snapshot."""
        super().__init__()
        self.filter_text = ""

    @property
    def host(self) -> ConsoleHost:
        """The console app."""
        return cast(ConsoleHost, self.app)

    def compose(self) -> ComposeResult:
        """Status line, the view's body (or its empty state), the prompt, the footer."""
        yield StatusLine(id="status")
        yield Static(id="empty", classes="empty-state")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield PromptLine(id="prompt")
        yield KeyHints(id="keys")

    def compose_body(self) -> ComposeResult:
        """The view's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        """Show the latest data as soon as the widgets exist."""
        self.show(self.host.latest)

    def on_screen_resume(self) -> None:
        """Show the latest data at once when the view comes back."""
        self.show(self.host.latest)

    def show(self, snapshot: Snapshot | None) -> None:
        """Render `snapshot` (or the waiting state); a no-op until composed."""
        if not self.query(StatusLine):
            return
        self.query_one(StatusLine).update(self.host.status_text(snapshot, self.VIEW))
        empty = self.query_one("#empty", Static)
        body = self.query_one("#body")
        if snapshot is None or not snapshot.status.ready or snapshot.error:
            if snapshot is None:
                message = "Connecting to the store…"
            elif snapshot.error:
                message = snapshot.error
            else:
                message = status_message(snapshot.status)
            empty.update(message)
            empty.display = True
            body.display = False
            return
        if snapshot.request.view != self.VIEW:
            return  # a snapshot for another view; ours is on its way
        empty.display = False
        body.display = True
        self.render_snapshot(snapshot)

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the view from a ready snapshot for it."""

    # ---------------------------------------------------------------- prompt / filter

    def open_prompt(self, kind: str) -> None:
        """Show the command line or the filter."""
        prompt = self.query_one(PromptLine)
        if kind == "filter":
            prompt.open("filter", self.filter_text)
        else:
            prompt.open("command")

    @on(PromptLine.FilterChanged)
    def _filter_changed(self, event: PromptLine.FilterChanged) -> None:
        self.filter_text = event.value
        self.show(self.host.latest)

    @on(PromptLine.Entered)
    def _prompt_submitted(self, event: PromptLine.Entered) -> None:
        self._refocus()
        if event.kind == "command" and event.value:
            self.host.run_command(event.value)

    @on(PromptLine.Dismissed)
    def _prompt_closed(self) -> None:
        self._refocus()

    def _refocus(self) -> None:
        self.focus_next()

    def action_back(self) -> None:
        """Esc: clear the filter, else leave this view."""
        if self.filter_text:
            self.filter_text = ""
            self.show(self.host.latest)
            return
        self.host.go_back()
