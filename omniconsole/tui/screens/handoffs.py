"""Handoffs: a live feed of messages that continued a conversation on another channel."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from omniconsole.tui.format import short_time, style_for
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot

__all__ = ["HandoffsScreen"]


class HandoffsScreen(ViewScreen):
    """Newest handoffs first; `/email sms` filters by channel pair (or anything else)."""

    VIEW = "handoffs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_customer", "Customer", show=True),
    ]

    def compose_body(self) -> ComposeResult:
        """Counts per channel pair, then the feed."""
        yield Static(id="handoff-pairs", classes="detail")
        table: DataTable[str | Text] = DataTable(id="handoffs-table", cursor_type="row")
        for label in ("Time", "Customer", "From", "To", "Journey step", "Outcome"):
            table.add_column(label, key=label.lower())
        yield table
        yield Static(id="handoffs-hint", classes="hint")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the feed and the pair counts."""
        variables = self.app.theme_variables
        pairs = " · ".join(f"{pair} {n}" for pair, n in snapshot.handoff_pairs[:8])
        self.query_one("#handoff-pairs", Static).update(
            f"{snapshot.handoff_total} handoffs" + (f" — {pairs}" if pairs else "")
        )
        rows: list[tuple[str, list[str | Text]]] = []
        for h in snapshot.handoffs:
            d, f = h.decision, h.handoff
            to = d.channel or "—"
            text = (
                f"{d.customer} {f.channel} {f.action} {to} {h.pair} "
                f"{f.channel}>{to} {d.journey}.{d.step} {d.outcome}"
            )
            if not matches_filter(text, self.filter_text):
                continue
            rows.append(
                (
                    f"{d.ts}:{d.customer}:{d.seq}",
                    [
                        short_time(d.at),
                        d.customer,
                        f"{f.channel} {f.action}",
                        f"→ {to}",
                        f"{d.journey}.{d.step}",
                        Text(d.outcome, style=style_for(variables, d.outcome)),
                    ],
                )
            )
        fill_table(self.query_one("#handoffs-table", DataTable), rows)
        hint = self.query_one("#handoffs-hint", Static)
        if not snapshot.handoff_total:
            hint.update(
                "No handoffs yet. A handoff is a message sent on another channel than the "
                "customer's last open, click or reply."
            )
        elif not rows:
            hint.update(f"No handoff matches “{self.filter_text}” (Esc clears the filter).")
        else:
            hint.update("Enter: open the customer · /email sms: filter by channel pair")

    @on(DataTable.RowSelected, "#handoffs-table")
    def _selected(self) -> None:
        self.action_open_customer()

    def action_open_customer(self) -> None:
        """Open the highlighted handoff's customer."""
        table = self.query_one("#handoffs-table", DataTable)
        if table.row_count:
            self.host.open_customer(str(table.get_row_at(table.cursor_row)[1]))
