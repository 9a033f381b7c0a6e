"""Channels: decisions per channel, throughput, and the adapters' health."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from omniconsole.tui.format import style_for
from omniconsole.tui.present import HEALTH_LABEL
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot

__all__ = ["ChannelsScreen"]


class ChannelsScreen(ViewScreen):
    """Per channel: sent / deferred / suppressed / failed, sends per second, health."""

    VIEW = "channels"

    def compose_body(self) -> ComposeResult:
        """The channel table and a legend."""
        table: DataTable[str | Text] = DataTable(id="channels-table", cursor_type="row")
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
            name = c.channel or "no channel"
            health = "" if c.health is None else HEALTH_LABEL.get(c.health, c.health)
            if not matches_filter(f"{name} {health} {c.detail}", self.filter_text):
                continue
            rows.append(
                (
                    name,
                    [
                        name,
                        Text(health, style_for(variables, c.health)),
                        Text(str(c.sent), justify="right"),
                        Text(str(c.deferred), justify="right"),
                        Text(str(c.suppressed), justify="right"),
                        Text(str(c.failed), justify="right"),
                        Text(f"{rate.get(name, 0.0):.1f}", justify="right"),
                        c.detail,
                    ],
                )
            )
        fill_table(self.query_one("#channels-table", DataTable), rows)
        total = sum(c.sent + c.deferred + c.suppressed + c.failed for c in snapshot.channels)
        self.query_one("#channels-hint", Static).update(
            "No decisions yet." if not total else "Sent/s: wall-clock sends per second, last 5 s"
        )
