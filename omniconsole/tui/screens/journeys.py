"""Journeys: every journey's counts and sends over time; Enter opens its funnel.

The funnel counts customers (journey instances): each instance's message for a step
counts once, by its final outcome; fallback re-sends and deferral decisions are shown
apart. Enter on a count opens those decisions.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Sparkline, Static

from omniconsole.adapters.store.console_rows import DecisionFilter, JourneyStats
from omniconsole.tui.format import bar, pct
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot
from omniconsole.tui.widgets import ViewTable

__all__ = ["FunnelScreen", "JourneysScreen"]


_CATEGORY = {"transactional": "transact.", "promotional": "promo", "lifecycle": "lifecycle"}


def _right(value: object) -> Text:
    return Text(f"{value:,}" if isinstance(value, int) else str(value), justify="right")


def _steps_line(journey: JourneyStats) -> str:
    waiting = ", ".join(f"{s.step} {s.waiting:,}" for s in journey.steps)
    return f"{journey.name} · waiting per step: {waiting or 'no steps'}"


class JourneysScreen(ViewScreen):
    """All journeys: entered, active (per step), converted, exited, conversion rate."""

    VIEW = "journeys"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "drill", "Funnel", show=True),
        Binding("d", "decisions", "Decisions", show=True),
    ]

    def __init__(self) -> None:
        """An empty journeys view."""
        super().__init__()
        self._journeys: dict[str, JourneyStats] = {}

    def compose_body(self) -> ComposeResult:
        """The journeys table, the highlighted journey's steps, sparklines of its entries
        and sends."""
        table: DataTable[str | Text] = ViewTable(id="journeys-table", cursor_type="row")
        table.add_column("Journey", key="journey")
        table.add_column("Category", key="category")
        for label in ("Entered", "Active", "Conv.", "Exited", "Rate", "Msgs"):
            table.add_column(label, key=label.lower())
        yield table
        yield Static(id="journeys-steps", classes="detail")
        yield Static("Entries per simulated hour (last 48 h)", classes="caption")
        yield Sparkline([], id="journeys-entries-spark")
        yield Static("Sends per simulated hour (last 48 h)", classes="caption")
        yield Sparkline([], id="journeys-spark")
        yield Static(id="journeys-hint", classes="hint")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the table from the snapshot's journey stats."""
        table = self.query_one("#journeys-table", DataTable)
        shown = [
            j
            for j in snapshot.journeys
            if matches_filter(f"{j.name} {j.category}", self.filter_text)
        ]
        self._journeys = {j.name: j for j in snapshot.journeys}
        rows: list[tuple[str, list[str | Text]]] = [
            (
                j.name,
                [
                    j.name,
                    _CATEGORY.get(j.category, j.category),
                    _right(j.entered),
                    _right(j.active),
                    _right(j.converted if j.has_goal else "—"),
                    _right(j.exited),
                    _right(pct(j.conversion_rate)),
                    _right(j.messages_sent),
                ],
            )
            for j in shown
        ]
        fill_table(table, rows)
        hint = self.query_one("#journeys-hint", Static)
        if not snapshot.journeys:
            hint.update("No journeys yet: nothing has entered a journey in this store.")
        elif not shown:
            hint.update(f"No journey matches the filter “{self.filter_text}” (Esc clears it).")
        else:
            hint.update("Enter funnel · d decisions · s sort · — no goal, so no rate")
        self._show_highlighted()

    @on(DataTable.RowHighlighted, "#journeys-table")
    def _highlighted(self) -> None:
        self._show_highlighted()

    def _highlighted_journey(self) -> JourneyStats | None:
        table = self.query_one("#journeys-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._journeys.get(str(key))

    def _show_highlighted(self) -> None:
        journey = self._highlighted_journey()
        steps = self.query_one("#journeys-steps", Static)
        spark = self.query_one("#journeys-spark", Sparkline)
        entries = self.query_one("#journeys-entries-spark", Sparkline)
        if journey is None:
            steps.update("")
            spark.data = []
            entries.data = []
            return
        steps.update(_steps_line(journey))
        spark.data = list(journey.sends_series)
        entries.data = list(journey.entries_series)

    @on(DataTable.RowSelected, "#journeys-table")
    def _selected(self) -> None:
        self.action_drill()

    def action_drill(self) -> None:
        """Open the highlighted journey's funnel."""
        journey = self._highlighted_journey()
        if journey is not None:
            self.app.push_screen(FunnelScreen(journey.name))

    def action_decisions(self) -> None:
        """The highlighted journey's decisions."""
        journey = self._highlighted_journey()
        if journey is not None:
            self.host.open_decisions(DecisionFilter(journey=journey.name))


#: funnel column -> the outcome its count is of (None: any)
_FUNNEL_OUTCOME: dict[int, str | None] = {0: None, 1: None, 2: "sent", 3: "sent", 4: "deferred",
                                          5: "suppressed", 6: "failed", 7: "sent"}  # fmt: skip


class FunnelScreen(ViewScreen):
    """One journey's steps as a funnel: customers waiting at each step and what was sent."""

    VIEW = "journeys"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "decisions", "Decisions", show=True),
    ]

    def __init__(self, journey: str) -> None:
        """The funnel of `journey`."""
        super().__init__()
        self.journey = journey

    def compose_body(self) -> ComposeResult:
        """Summary line, the funnel table, entries and sends sparklines."""
        yield Static(id="funnel-summary", classes="detail")
        table: DataTable[str | Text] = ViewTable(id="funnel-table", cursor_type="cell")
        table.add_column("Step", key="step")
        for label in ("Waiting", "Sent", "Fallback", "Deferrals", "Suppr.", "Failed"):
            table.add_column(label, key=label.lower())
        table.add_column("Sent of entered", key="bar")
        yield table
        yield Static(
            "Customers per step, by what became of their message · Enter on a count: those"
            " decisions · Esc back",
            classes="hint",
        )
        yield Static("Entries per simulated hour (last 48 h)", classes="caption")
        yield Sparkline([], id="funnel-entries-spark")
        yield Static("Sends per simulated hour (last 48 h)", classes="caption")
        yield Sparkline([], id="funnel-spark")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the funnel from the snapshot's stats for this journey."""
        journey = next((j for j in snapshot.journeys if j.name == self.journey), None)
        summary = self.query_one("#funnel-summary", Static)
        if journey is None:
            summary.update(f"Journey {self.journey!r} is not in this store (any more).")
            return
        rate = pct(journey.conversion_rate)
        summary.update(
            Text.assemble(
                (journey.name, "bold"),
                f" ({journey.category or 'category unknown'}) · entered {journey.entered:,}"
                f" · active {journey.active:,} · converted "
                + (f"{journey.converted:,} ({rate})" if journey.has_goal else "— (no goal)")
                + f" · exited {journey.exited:,}",
            )
        )
        base = max(journey.entered, max((s.sent for s in journey.steps), default=0))
        rows: list[tuple[str, list[str | Text]]] = [
            (
                s.step,
                [
                    s.step,
                    _right(s.waiting),
                    _right(s.sent),
                    _right(s.fallback_sent),
                    _right(s.deferred),
                    _right(s.suppressed),
                    _right(s.failed),
                    bar(s.sent, base, 16),
                ],
            )
            for s in journey.steps
            if matches_filter(s.step, self.filter_text)
        ]
        fill_table(self.query_one("#funnel-table", DataTable), rows)
        self.query_one("#funnel-spark", Sparkline).data = list(journey.sends_series)
        self.query_one("#funnel-entries-spark", Sparkline).data = list(journey.entries_series)

    @on(DataTable.CellSelected, "#funnel-table")
    def _selected(self) -> None:
        self.action_decisions()

    def action_decisions(self) -> None:
        """The decisions behind the count under the cursor (the step's, by outcome)."""
        table = self.query_one("#funnel-table", DataTable)
        if not table.row_count:
            return
        step = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        outcome = _FUNNEL_OUTCOME.get(table.cursor_column)
        self.host.open_decisions(DecisionFilter(journey=self.journey, step=step, outcome=outcome))

    def action_back(self) -> None:
        """Esc: clear the filter, else back to the journeys list."""
        if self.filter_text:
            super().action_back()
        else:
            self.app.pop_screen()
