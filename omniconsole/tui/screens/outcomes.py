"""Outcomes: did the journeys change what customers do? Treatment against control.

Per journey that a control group or variants measure (and per variant): entered,
converted and rate of the treated and of the control group, the lift (treatment rate
minus control rate) with its 95% interval drawn as a bar on a common axis, and the
cumulative conversion rate of both groups day by day. The numbers are the replay
report's `outcomes` section (Newcombe's interval), read from the store's cut.

Below `WIDE` columns (an 80×24 terminal) the table shows rates only and the bar takes
the width that is left, so nothing scrolls sideways; the counts stay in the lines below.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from omniconsole.adapters.store.console_rows import OutcomesOverview
from omniconsole.tui.format import interval_bar, style_for
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import Snapshot

__all__ = ["OutcomesScreen", "axis_bound"]

_BLOCKS = "▁▂▃▄▅▆▇█"
#: days of the conversions-over-time lines
SERIES_DAYS = 30
#: terminals this wide get the counts and the interval's numbers in the table
WIDE = 120
#: the bar's width: at most, and at least however narrow the terminal
BAR_MAX, BAR_MIN = 25, 9
#: the table's columns
_COLUMNS = ("Journey / variant", "Treatment", "Control", "Lift", "95% interval", "")
NO_EXPERIMENT = (
    "No control group and no variant in this run's config: there is nothing to compare "
    "against. Add [holdout] share = 0.1 to a journey, or [global_control] to policy.toml "
    "(docs/outcomes.md; example: config/examples/holdouts)."
)


def axis_bound(lifts: list[dict[str, Any] | None]) -> float:
    """The half-width of the common axis: the widest interval, up to the next 5 points."""
    widest = max((max(abs(x) for x in lift["ci95"]) for lift in lifts if lift), default=0.05)
    steps = max(1, -(-round(widest * 1000) // 50))  # ceil to 0.05
    return steps * 0.05


def _group(g: dict[str, Any], wide: bool) -> Text:
    rate = f"{g['rate'] * 100:5.1f}%"
    return Text(f"{g['converted']:,}/{g['entered']:,} {rate}" if wide else rate, justify="right")


def _interval(lift: dict[str, Any], wide: bool) -> str:
    low, high = lift["ci95"]
    if not wide:
        return f"{low * 100:+.1f}…{high * 100:+.1f}"
    return f"{low * 100:+.1f} … {high * 100:+.1f}" + (
        "  excludes 0" if lift["excludes_zero"] else ""
    )


def _bar_width(screen: int, rows: list[list[str | Text]]) -> int:
    """What is left of `screen` for the bar once the other columns are as wide as their
    widest cell (each column has a cell of padding either side; 2 for the scrollbar)."""
    others = 0
    for n, label in enumerate(_COLUMNS):
        if n == 4:
            continue
        cells = [len(str(r[n])) for r in rows]
        others += max([len(label), *cells]) + 2
    return max(BAR_MIN, min(BAR_MAX, screen - others - 2 - 2))


def _rates(series: tuple[tuple[int, int], ...]) -> list[float]:
    return [c / e if e else 0.0 for e, c in series]


def _line(values: list[float], top: float) -> str:
    if top <= 0:
        return "▁" * len(values)
    return "".join(_BLOCKS[min(7, int(v / top * 7.999))] for v in values)


class OutcomesScreen(ViewScreen):
    """Per measured journey and variant: treatment, control, lift and its interval."""

    VIEW = "outcomes"
    BINDINGS: ClassVar[list[BindingType]] = []

    def compose_body(self) -> ComposeResult:
        """The lift table, a legend, and the conversions over time."""
        table: DataTable[str | Text] = DataTable(id="outcomes-table", cursor_type="row")
        for label, key in zip(_COLUMNS, ("journey", "treatment", "control", "lift", "interval",
                                         "range"), strict=True):  # fmt: skip
            table.add_column(label, key=key)
        yield table
        yield Static(id="outcomes-legend", classes="hint")
        yield Static(id="outcomes-series", classes="detail")

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Fill the table and the series from the snapshot's outcomes."""
        overview = snapshot.outcomes or OutcomesOverview(None)
        table = self.query_one("#outcomes-table", DataTable)
        legend = self.query_one("#outcomes-legend", Static)
        series = self.query_one("#outcomes-series", Static)
        report = overview.report
        if report is None:
            table.display = False
            legend.update(Text(NO_EXPERIMENT))  # not markup: its [holdout] is a TOML table
            series.update("")
            return
        table.display = True
        entries: list[tuple[str, str, dict[str, Any]]] = []
        for journey, entry in report["journeys"].items():
            entries.append((journey, journey, entry))
            for variant, v in entry.get("variants", {}).items():
                entries.append((f"{journey}:{variant}", f"  variant {variant}", v))
        bound = axis_bound([e["lift"] for _, _, e in entries])
        variables = self.app.theme_variables
        wide = self.app.size.width >= WIDE
        rows: list[tuple[str, list[str | Text], dict[str, Any] | None]] = []
        for key, label, entry in entries:
            if not matches_filter(key, self.filter_text):
                continue
            lift = entry["lift"]
            if lift is None:
                cells: list[str | Text] = [Text("—", justify="right"), "a group is empty", ""]
            else:
                cells = [
                    Text(f"{lift['absolute'] * 100:+.1f} pp", justify="right"),
                    "",  # the bar: drawn once the other columns' widths are known
                    _interval(lift, wide),
                ]
            group = [_group(entry["treatment"], wide), _group(entry["control"], wide)]
            rows.append((key, [label, *group, *cells], lift))
        width = _bar_width(self.app.size.width, [r[1] for r in rows])
        for _, cells, lift in rows:
            if lift is None:
                continue
            low, high = lift["ci95"]
            style = style_for(variables, "sent" if low > 0 else "suppressed" if high < 0
                              else "deferred")  # fmt: skip
            if isinstance(cells[3], Text):
                cells[3].stylize(style)
            cells[4] = Text(interval_bar(low, high, lift["absolute"], bound, width), style=style)
        fill_table(table, [(k, c) for k, c, _ in rows], sortable=False)
        legend.update(
            f"Lift = treatment rate − control rate, in percentage points; the bar is its 95% "
            f"interval on an axis from −{bound * 100:.0f} to +{bound * 100:.0f} pp (│ is 0, "
            f"● the estimate; a bar clear of │ excludes 0). {report['method']}."
        )
        series.update(self._series(overview))

    def on_resize(self, event: events.Resize) -> None:
        """Wide or narrow: draw the table again for the new width."""
        self.redraw()

    def _series(self, overview: OutcomesOverview) -> Group:
        days = overview.days[-SERIES_DAYS:]
        parts: list[Text | Table] = [
            Text(
                f"Conversion rate so far, day by day ({days[0]} … {days[-1]})"
                if days
                else "Conversion rate so far, day by day (no day yet)",
                style="bold",
            )
        ]
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_column()
        grid.add_column(justify="right")
        for journey, groups in overview.conversions.items():
            if not matches_filter(journey, self.filter_text):
                continue
            lines = {g: _rates(s[-SERIES_DAYS:]) for g, s in groups.items()}
            top = max((v for values in lines.values() for v in values), default=0.0)
            for n, (group, values) in enumerate(lines.items()):
                entered, converted = groups[group][-1] if groups[group] else (0, 0)
                last = f"{values[-1] * 100:.1f}% {converted:,}/{entered:,}" if values else "—"
                grid.add_row(journey if n == 0 else "", group, _line(values, top), last)
        parts.append(grid)
        return Group(*parts)
