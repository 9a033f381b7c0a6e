"""The base of every view: status line, body, prompt and footer, fed by snapshots.

Tables share k9s habits here: `s`/`S` sort the focused table by its next column /
reverse it (or click a header), and `fill_table` keeps the cursor on its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from omniconsole.adapters.store.console_rows import DecisionFilter
from omniconsole.tui.present import status_message
from omniconsole.tui.snapshot import PageRequest, Snapshot
from omniconsole.tui.widgets import KeyHints, PromptLine, StatusLine

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ConsoleHost", "SortState", "ViewScreen", "fill_table", "matches_filter"]


class ConsoleHost(Protocol):
    """What views may ask of the app."""

    latest: Snapshot | None
    customer_query: str | None

    def open_customer(self, query: str) -> None:
        """Show the customer pane for `query`."""

    def open_decisions(self, where: DecisionFilter) -> None:
        """Show the Decisions view filtered by `where`."""

    def run_command(self, text: str) -> None:
        """Run a `:` command line."""

    def status_text(self, snapshot: Snapshot | None, view: str) -> Text:
        """The status line for `view`."""

    def go_back(self) -> None:
        """Return to the previous view."""

    def page_request(self, view: str) -> PageRequest:
        """The page of decisions `view` shows."""

    def set_page_request(self, view: str, request: PageRequest) -> None:
        """Ask for another page of decisions for `view`."""

    def clock(self) -> datetime | None:
        """The committed cut's clock, as the header shows it."""

    def yank(self, text: str) -> None:
        """Copy `text` to the clipboard and say so."""


def matches_filter(text: str, needle: str) -> bool:
    """Every word of `needle` occurs in `text` (case-insensitive)."""
    hay = text.casefold()
    return all(word in hay for word in needle.casefold().split())


@dataclass(slots=True)
class SortState:
    """How a table is sorted: by column `column` (None: as the data came), `reverse`."""

    column: int | None = None
    reverse: bool = False


def _sort_key(cell: str) -> tuple[int, float, str]:
    text = cell.strip().rstrip("%").replace(",", "")
    try:
        return (0, -float(text), "")  # numbers first, largest first
    except ValueError:
        return (1, 0.0, cell.casefold())


def fill_table(
    table: DataTable[str | Text],
    rows: Sequence[tuple[str, Sequence[str | Text]]],
    *,
    sortable: bool = True,
) -> None:
    """Replace the rows of `table` (keyed) when they changed, keeping the cursor's row,
    in the order the table is sorted by (`s`/`S`, or a header click)."""
    sort = getattr(table, "_oc_sort", None)
    if sortable and isinstance(sort, SortState) and sort.column is not None:
        column = sort.column
        rows = sorted(rows, key=lambda r: _sort_key(str(r[1][column])), reverse=sort.reverse)
    signature = [(key, tuple(str(c) for c in cells)) for key, cells in rows]
    if getattr(table, "_oc_signature", None) == signature:
        return
    table._oc_signature = signature  # type: ignore[attr-defined]
    cursor_key: str | None = None
    if table.row_count and 0 <= table.cursor_row < table.row_count:
        cursor_key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
    old_row, old_column = table.cursor_row, table.cursor_column
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    keys = [key for key, _ in rows]
    if cursor_key in keys:
        table.move_cursor(row=keys.index(cursor_key), column=old_column, animate=False)
    elif rows:
        table.move_cursor(row=min(old_row, len(rows) - 1), column=old_column, animate=False)


class ViewScreen(Screen[None]):
    """A view of the store. Subclasses compose `compose_body` and implement `render_snapshot`.

    All methods run on the event loop.
    """

    VIEW: ClassVar[str] = ""
    SORTABLE: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=False),
        Binding("s", "sort(False)", "Sort", show=False),
        Binding("S", "sort(True)", "Reverse sort", show=False),
    ]

    def __init__(self) -> None:
        """An empty view; it fills from the app's latest snapshot."""
        super().__init__()
        self.filter_text = ""
        #: what the view last drew from: (snapshot seq, filter, theme). Drawing the same
        #: again is skipped: a view switched back to, or a snapshot whose only news is the
        #: replay's progress (the header's), costs no rebuild.
        self._drawn: tuple[int, str, str] | None = None
        try:
            app = self.app
        except RuntimeError:  # made outside a running app (no app to ask)
            return
        if app.is_running and app.screen_stack:
            # A view opened after the first is styled from the stylesheet as it stands
            # when its widgets mount. Textual takes a new screen for one whose styles are
            # stale and re-parses every stylesheet and restyles the app for it: a third
            # of a first key press. (A theme change still reaches every view: it bumps
            # the app's count, so a view shown again is refreshed as before.)
            self._css_update_count = app._css_update_count

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
        """Show the latest data at once when the view comes back (focus its table, unless
        something is already focused: a key may have been typed already)."""
        self.show(self.host.latest)
        if self.focused is None:
            self._refocus()

    def prepare(self, snapshot: Snapshot) -> None:
        """Fill the view off screen, focused as it will be when shown (`tui.warmup`): a
        table draws its cursor by the focus, so the cells drawn ahead are the ones kept."""
        self.show(snapshot)
        if self.focused is None:
            self._refocus()

    def show(self, snapshot: Snapshot | None) -> None:
        """Render `snapshot` (or the waiting state); a no-op until composed."""
        if not self.query(StatusLine):
            return
        status = self.query_one(StatusLine)
        header = self.host.status_text(snapshot, self.VIEW)
        if header.plain != getattr(status, "_oc_plain", None):
            status._oc_plain = header.plain  # type: ignore[attr-defined]
            status.update(header, layout=False)  # one docked line: its size never changes
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
        drawn = (snapshot.seq, self.filter_text, self.app.theme)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.render_snapshot(snapshot)

    def redraw(self) -> None:
        """Draw the latest snapshot again (the sort or the theme changed)."""
        self._drawn = None
        self.show(self.host.latest)

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
    def _on_filter_changed(self, event: PromptLine.FilterChanged) -> None:
        self._filter_changed(event)

    def _filter_changed(self, event: PromptLine.FilterChanged) -> None:
        self.filter_text = event.value
        self.show(self.host.latest)

    @on(PromptLine.Entered)
    def _prompt_submitted(self, event: PromptLine.Entered) -> None:
        self._refocus()
        if event.kind == "command" and event.value:
            self.host.run_command(event.value)
        elif event.kind == "filter":
            self.apply_filter(event.value)

    def apply_filter(self, text: str) -> None:
        """Enter on the filter: keep it (views that filter what they show already did)."""
        self.filter_text = text

    @on(PromptLine.Dismissed)
    def _prompt_closed(self) -> None:
        self._refocus()

    def main_widget(self) -> Widget | None:
        """The widget that holds the focus between prompts (the first visible table)."""
        for table in self.query(DataTable):
            if table.display and table.parent is not None and table.parent.display:
                return table
        return None

    def _refocus(self) -> None:
        """Give the focus back to the view (never to an input box: keys are commands)."""
        widget = self.main_widget()
        if widget is not None and widget.focusable:
            widget.focus()
        else:
            self.set_focus(None)

    def action_back(self) -> None:
        """Esc: clear the filter, else leave this view."""
        if self.filter_text:
            self.filter_text = ""
            self.show(self.host.latest)
            return
        self.host.go_back()

    # ---------------------------------------------------------------- sorting

    def _sort_table(self) -> DataTable[str | Text] | None:
        focused = self.focused
        if isinstance(focused, DataTable):
            return focused
        widget = self.main_widget()
        return widget if isinstance(widget, DataTable) else None

    def action_sort(self, reverse: bool) -> None:
        """`s`: sort the table by its next column; `S`: reverse the order."""
        table = self._sort_table()
        if table is None or not self.SORTABLE:
            self.notify("This list is in time order, newest first.", timeout=2)
            return
        sort = getattr(table, "_oc_sort", None)
        if not isinstance(sort, SortState):
            sort = table._oc_sort = SortState()  # type: ignore[attr-defined]
        if reverse:
            sort.reverse = not sort.reverse
        else:
            columns = len(table.columns)
            sort.column = 0 if sort.column is None else (sort.column + 1) % columns
            sort.reverse = False
        self._sorted(table, sort)

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        if not self.SORTABLE:
            return
        table = event.data_table
        sort = getattr(table, "_oc_sort", None)
        if not isinstance(sort, SortState):
            sort = table._oc_sort = SortState()  # type: ignore[attr-defined]
        if sort.column == event.column_index:
            sort.reverse = not sort.reverse
        else:
            sort.column, sort.reverse = event.column_index, False
        self._sorted(table, sort)

    def _sorted(self, table: DataTable[str | Text], sort: SortState) -> None:
        table._oc_signature = None  # type: ignore[attr-defined]
        label = str(list(table.columns.values())[sort.column or 0].label)
        self.notify(f"Sorted by {label}{' (reversed)' if sort.reverse else ''}", timeout=2)
        self.redraw()
