"""Channels: decisions per channel, throughput, and the adapters' health.

Enter on a count opens those decisions (the channel's, of that outcome).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from omniconsole.adapters.store.console_rows import DecisionFilter
from omniconsole.tui.format import style_for
from omniconsole.tui.present import HEALTH_LABEL
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot
from omniconsole.tui.widgets import ViewTable

__all__ = ["ChannelsScreen"]

#: no channel: the decisions that found no usable channel
NO_CHANNEL = "(none)"
#: column -> the outcome its count is of
_OUTCOME_COLUMN = {2: "sent", 3: "deferred", 4: "suppressed", 5: "failed"}


class ChannelsScreen(ViewScreen):
    """Per channel: sent / deferred / suppressed / failed, sends per second, health."""

    VIEW = "channels"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "decisions", "Decisions", show=True),
    ]

    def compose_body(self) -> ComposeResult:
        """The channel table and a legend."""
        table: DataTable[str | Text] = ViewTable(id="channels-table", cursor_type="cell")
        table.add_column("Channel", key="channel")
        table.add_column("Health", key="health")
        for label in ("Sent", "Deferred", "Suppr.", "Failed", "Sent/s"):
            table.add_column(label, key=label.lower())
        table.add_column("Detail", key="detail")
        yield table
        yield Static(id="channels-hint", classes="hint")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the table."""
        variables = self.app.theme_variables
        rate = dict(snapshot.throughput)
        rows: list[tuple[str, list[str | Text]]] = []
        for c in snapshot.channels:
            name = c.channel or NO_CHANNEL
            health = "" if c.health is None else HEALTH_LABEL.get(c.health, c.health)
            detail = c.detail if c.channel is not None else "no usable channel"
            if not matches_filter(f"{name} {health} {detail}", self.filter_text):
                continue
            rows.append(
                (
                    name,
                    [
                        name,
                        Text(health, style_for(variables, c.health)),
                        Text(f"{c.sent:,}", justify="right"),
                        Text(f"{c.deferred:,}", justify="right"),
                        Text(f"{c.suppressed:,}", justify="right"),
                        Text(f"{c.failed:,}", justify="right"),
                        Text("" if c.channel is None else f"{rate.get(name, 0.0):.1f}",
                             justify="right"),
                        detail,
                    ],
                )
            )  # fmt: skip
        fill_table(self.query_one("#channels-table", DataTable), rows)
        total = sum(c.sent + c.deferred + c.suppressed + c.failed for c in snapshot.channels)
        self.query_one("#channels-hint", Static).update(
            "No decisions yet."
            if not total
            else "Enter on a count: those decisions · Sent/s: sends per wall second, last 5 s"
        )

    @on(DataTable.CellSelected, "#channels-table")
    def _selected(self) -> None:
        self.action_decisions()

    def action_decisions(self) -> None:
        """The decisions behind the count under the cursor."""
        table = self.query_one("#channels-table", DataTable)
        if not table.row_count:
            return
        name = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        channel = "" if name == NO_CHANNEL else name
        outcome = _OUTCOME_COLUMN.get(table.cursor_column)
        self.host.open_decisions(DecisionFilter(channel=channel, outcome=outcome))
