"""Caps: the fatigue governor's usage, deferrals and suppressions, and the policy.

Enter on a cap or a reason opens its decisions; on a fatigued customer, the customer.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from omniconsole.adapters.store.console_rows import DecisionFilter
from omniconsole.tui.format import bar, spark
from omniconsole.tui.present import policy_lines
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot
from omniconsole.tui.widgets import ViewTable

__all__ = ["CapsScreen"]


def _right(value: object) -> Text:
    return Text(str(value), justify="right")


class CapsScreen(ViewScreen):
    """Customers at each cap, decisions by reason over time, top fatigued, the policy."""

    VIEW = "caps"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "drill", "Open", show=True),
        Binding("y", "yank", "Yank", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        """Three tables on the left, the policy beside them (below on narrow screens)."""
        with Horizontal(id="caps-columns"):
            with Vertical(id="caps-left"):
                yield Static(id="caps-caption", classes="caption")
                caps: DataTable[str | Text] = ViewTable(id="caps-table", cursor_type="row")
                for label in ("Cap", "Limit", "At cap", "Counted"):
                    caps.add_column(label, key=label.lower())
                yield caps
                yield Static("Deferred and suppressed by reason", classes="caption")
                reasons: DataTable[str | Text] = ViewTable(id="reasons-table", cursor_type="row")
                for label in ("Reason", "Deferred", "Suppr.", "Last 24 h"):
                    reasons.add_column(label, key=label.lower())
                yield reasons
                yield Static("Most fatigued customers", classes="caption")
                top: DataTable[str | Text] = ViewTable(id="fatigued-table", cursor_type="row")
                for label in ("Customer", "Capped sends", "Deferred", "Suppr."):
                    top.add_column(label, key=label.lower())
                yield top
            with Vertical(id="caps-right"):
                yield Static("Policy in force", classes="caption")
                yield Static(id="policy")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the tables and the policy."""
        overview = snapshot.caps
        if overview is None:
            return
        needle = self.filter_text
        self.query_one("#caps-caption", Static).update(
            f"Customers at each cap now ({overview.clock or 'clock unknown'})"
        )
        fill_table(
            self.query_one("#caps-table", DataTable),
            [
                (
                    s.cap.reason,
                    [
                        s.cap.reason,
                        _right(s.cap.limit),
                        _right(s.customers_at_cap),
                        _right(s.customers_counted),
                    ],
                )
                for s in overview.caps
                if matches_filter(s.cap.reason, needle)
            ],
        )
        fill_table(
            self.query_one("#reasons-table", DataTable),
            [
                (
                    r.reason,
                    [
                        r.reason,
                        _right(f"{r.deferred:,}"),
                        _right(f"{r.suppressed:,}"),
                        spark(r.series, 24),
                    ],
                )
                for r in overview.reasons
                if matches_filter(r.reason, needle)
            ]
            or [("none", ["none yet", "", "", ""])],
        )
        fill_table(
            self.query_one("#fatigued-table", DataTable),
            [
                (
                    f.customer,
                    [
                        f.customer,
                        f"{f.sends}/{f.cap.limit} in {f.cap.label} {bar(f.sends, f.cap.limit, 5)}",
                        _right(f.deferred),
                        _right(f.suppressed),
                    ],
                )
                for f in overview.top_fatigued
                if matches_filter(f.customer, needle)
            ],
        )
        policy = Table.grid(padding=(0, 1))
        policy.add_column(style="bold", no_wrap=True)
        policy.add_column()  # wraps at word boundaries, never mid-word
        for key, value in policy_lines(overview.policy):
            policy.add_row(key, value)
        self.query_one("#policy", Static).update(policy)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._drill(event.data_table)

    def action_drill(self) -> None:
        """Enter: a cap's or a reason's decisions; a fatigued customer's pane."""
        table = self.focused
        if isinstance(table, DataTable):
            self._drill(table)

    def _drill(self, table: DataTable[str | Text]) -> None:
        if not table.row_count:
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if table.id == "fatigued-table":
            self.host.open_customer(key)
        elif table.id in ("caps-table", "reasons-table") and key != "none":
            self.host.open_decisions(DecisionFilter(reason=key))

    def action_yank(self) -> None:
        """Copy the highlighted fatigued customer's id."""
        table = self.focused
        if isinstance(table, DataTable) and table.id == "fatigued-table" and table.row_count:
            self.host.yank(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))
