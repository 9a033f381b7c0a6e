"""Decisions (`6`, `:decisions`): every ledger line, filtered and paged over the whole store.

Braze and Customer.io call this message activity. Newest first; `/reason quiet_hours`
(see `omniconsole.tui.filters`) filters in the store, `n`/`p` page to older/newer
decisions, Enter opens the customer. Every count on the other views drills in here.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from omniconsole.adapters.store.console_rows import DecisionFilter, DecisionPage, DecisionRow
from omniconsole.tui.filters import describe, parse_filter
from omniconsole.tui.format import short_time, style_for
from omniconsole.tui.screens.base import ViewScreen, fill_table
from omniconsole.tui.snapshot import PAGE_ROWS, PageRequest, Snapshot
from omniconsole.tui.widgets import PromptLine, ViewTable

__all__ = ["DecisionsScreen", "HandoffsScreen"]


def _key(row: DecisionRow) -> str:
    return f"{row.ts}|{row.customer}|{row.seq}"


class DecisionsScreen(ViewScreen):
    """Every decision under a filter, a page at a time, newest first."""

    VIEW = "decisions"
    SORTABLE = False  # the page is in time order: the store's order, not a sort of it
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_customer", "Customer", show=True),
        Binding("n", "page(1)", "Older", show=True),
        Binding("p", "page(-1)", "Newer", show=True),
        Binding("y", "yank('customer')", "Yank", show=True),
        Binding("Y", "yank('message')", "Yank msg id", show=False),
    ]
    TABLE_ID = "decisions-table"
    COLUMNS: tuple[str, ...] = ("Time", "Customer", "Journey step", "Channel", "Outcome", "Reason")

    def __init__(self) -> None:
        """An empty view."""
        super().__init__()
        self._rows: dict[str, DecisionRow] = {}
        self._pages: list[tuple[int, str, int] | None] = []
        self._page: DecisionPage | None = None

    def compose_body(self) -> ComposeResult:
        """The filter bar, the table, the page line."""
        yield Static(id=f"{self.VIEW}-bar", classes="detail filter-bar")
        table: DataTable[str | Text] = ViewTable(id=self.TABLE_ID, cursor_type="row")
        for label in self.COLUMNS:
            table.add_column(label, key=label.lower())
        yield table
        yield Static(id=f"{self.VIEW}-hint", classes="hint")

    # ---------------------------------------------------------------- requests

    def request(self) -> PageRequest:
        """What this view asks the store for (the app keeps it)."""
        return self.host.page_request(self.VIEW)

    def set_request(self, request: PageRequest) -> None:
        """Ask for another page or filter."""
        self.host.set_page_request(self.VIEW, request)

    def base_filter(self) -> DecisionFilter:
        """The filter every request of this view starts from."""
        return DecisionFilter()

    # ---------------------------------------------------------------- rendering

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the bar, the table and the page line from the snapshot's page."""
        page = snapshot.page
        if page is None:
            return
        self._page = page
        variables = self.app.theme_variables
        self._rows = {_key(r): r for r in page.rows}
        rows: list[tuple[str, list[str | Text]]] = [
            (_key(r), self.cells(r, variables)) for r in page.rows
        ]
        fill_table(self.query_one(f"#{self.TABLE_ID}", DataTable), rows, sortable=False)
        self.query_one(f"#{self.VIEW}-bar", Static).update(self.bar_text(snapshot, page))
        self.query_one(f"#{self.VIEW}-hint", Static).update(self.page_text(page))

    def cells(self, r: DecisionRow, variables: dict[str, str]) -> list[str | Text]:
        """One row's cells."""
        return [
            short_time(r.at),
            r.customer,
            f"{r.journey}.{r.step}",
            r.channel or "none",
            Text(r.outcome, style=style_for(variables, r.outcome)),
            r.reason or "",
        ]

    def bar_text(self, snapshot: Snapshot, page: DecisionPage) -> Text:
        """The filter bar: what is filtered, or how to filter."""
        shown = describe(page.filter)
        if not shown:
            return Text.assemble(("All decisions", "bold"),
                                 "  ·  / filter: reason quiet_hours, outcome suppressed, "
                                 "channel sms, journey…, step…, since DATE, last 6h")  # fmt: skip
        return Text.assemble(("Filter ", "bold"), (shown, "bold reverse"), "  ·  Esc clears it")

    def page_text(self, page: DecisionPage) -> str:
        """Which rows of how many, and the keys."""
        first = len(self._pages) * PAGE_ROWS + 1 if page.rows else 0
        last = first + len(page.rows) - 1 if page.rows else 0
        total = "" if page.total is None else f" of {page.total:,}"
        if not page.rows:
            return (
                "No decision matches this filter."
                if not page.filter.empty
                else ("No decisions yet.")
            )
        more = " · n older" if page.more else ""
        newer = " · p newer" if self._pages else ""
        return f"{first:,}–{last:,}{total}, newest first{more}{newer} · Enter customer · y yank"

    # ---------------------------------------------------------------- filter and pages

    def open_prompt(self, kind: str) -> None:
        """`/` edits the filter as text."""
        prompt = self.query_one(PromptLine)
        if kind == "filter":
            prompt.open("filter", self.filter_text)
        else:
            prompt.open("command")

    def _filter_changed(self, event: PromptLine.FilterChanged) -> None:
        self.filter_text = event.value  # applied on Enter: the store is asked once

    def apply_filter(self, text: str) -> None:
        """Read `text` as a filter and ask the store for its first page."""
        snapshot = self.host.latest
        vocabulary = snapshot.vocabulary if snapshot is not None else {}
        clock = self.host.clock()
        parsed = parse_filter(text, vocabulary, now=clock, handoffs=self.base_filter().handoffs)
        if parsed.unknown:
            self.notify(
                f"Not understood: {' '.join(parsed.unknown)} — try reason quiet_hours, "
                "outcome suppressed, channel sms, journey NAME, step NAME, since 2026-03-05, "
                "last 6h",
                severity="warning",
            )
        self.filter_text = text
        self._pages = []
        self.set_request(PageRequest(parsed.filter))

    def show_filter(self, where: DecisionFilter) -> None:
        """Show the first page of `where` (a drill-in from another view)."""
        self.filter_text = describe(where).replace(" · ", " ").replace("=", " ")
        self._pages = []
        self.set_request(PageRequest(where))

    def action_back(self) -> None:
        """Esc: clear the filter, else leave this view."""
        if self.request().filter != self.base_filter() or self._pages:
            self.filter_text = ""
            self._pages = []
            self.set_request(PageRequest(self.base_filter()))
            return
        self.host.go_back()

    def action_page(self, delta: int) -> None:
        """`n`: the next (older) page; `p`: back to the newer one."""
        page = self._page
        request = self.request()
        if delta > 0:
            if page is None or not page.more or not page.rows:
                self.notify("No older decisions under this filter.", timeout=2)
                return
            self._pages.append(request.after)
            self.set_request(PageRequest(request.filter, page.rows[-1].key))
        else:
            if not self._pages:
                self.notify("This is the newest page.", timeout=2)
                return
            self.set_request(PageRequest(request.filter, self._pages.pop()))

    def _highlighted(self) -> DecisionRow | None:
        table = self.query_one(f"#{self.TABLE_ID}", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._rows.get(str(key))

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open_customer()

    def action_open_customer(self) -> None:
        """Open the highlighted decision's customer."""
        row = self._highlighted()
        if row is not None:
            self.host.open_customer(row.customer)

    def action_yank(self, what: str) -> None:
        """Copy the highlighted decision's customer id (`y`) or message id (`Y`)."""
        row = self._highlighted()
        if row is not None:
            self.host.yank(row.customer if what == "customer" else row.message_id)


class HandoffsScreen(DecisionsScreen):
    """Messages that continued a conversation on another channel, newest first, paged
    over the whole store; `/email whatsapp` filters by channel pair."""

    VIEW = "handoffs"
    TABLE_ID = "handoffs-table"
    COLUMNS = ("Time", "Customer", "From", "To", "Journey step")

    def base_filter(self) -> DecisionFilter:
        """Only sent handoffs."""
        return DecisionFilter(handoffs=True)

    def cells(self, r: DecisionRow, variables: dict[str, str]) -> list[str | Text]:
        """One handoff's cells."""
        source = r.handoff
        return [
            short_time(r.at),
            r.customer,
            f"{source.channel} {source.action}" if source else "",
            f"→ {r.channel or 'none'}",
            f"{r.journey}.{r.step}",
        ]

    def bar_text(self, snapshot: Snapshot, page: DecisionPage) -> Text:
        """The counts per channel pair, and the filter."""
        pairs = " · ".join(f"{pair} {n:,}" for pair, n in snapshot.handoff_pairs[:6])
        total = sum(n for _, n in snapshot.handoff_pairs)
        text = Text.assemble((f"{total:,} handoffs", "bold"), f" — {pairs}" if pairs else "")
        shown = describe(page.filter)
        if shown:
            text.append("\nFilter ", style="bold")
            text.append(shown, style="bold reverse")
            text.append("  ·  Esc clears it")
        return text

    def page_text(self, page: DecisionPage) -> str:
        """Which rows of how many."""
        if not page.rows and page.filter == self.base_filter():
            return (
                "No handoffs yet. A handoff is a message sent on another channel than the "
                "customer's last open, click or reply."
            )
        return (
            super().page_text(page).replace("Enter customer", "/email sms: a pair · Enter customer")
        )
