"""Pilot tests of the Outcomes view (7) on a store replayed from a planted-lift log with
the example config (control groups, a variant), and of the customer pane's "Why"."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static
from tui_support import plain, wait_for
from worlds import PLANTED_LIFT

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.screens.outcomes import NO_EXPERIMENT, OutcomesScreen

Planted = tuple[Path, dict[str, Any]]


def _ready(app: ConsoleApp) -> bool:
    snap = app.latest
    return (
        snap is not None
        and snap.status.ready
        and snap.request.view == "outcomes"
        and isinstance(app.screen, OutcomesScreen)
    )


def _rows(app: ConsoleApp) -> dict[str, list[str]]:
    table = app.screen.query_one("#outcomes-table", DataTable)
    return {
        str(key.value): [str(c) for c in table.get_row(key)]
        for key in (table.coordinate_to_cell_key((i, 0)).row_key for i in range(table.row_count))
    }


def _counts(group: dict[str, Any]) -> str:
    return f"{group['converted']:,}/{group['entered']:,}"


@pytest.mark.asyncio
async def test_the_outcomes_view_shows_each_journey_and_variant_treatment_against_control(
    planted: Planted,
) -> None:
    db, report = planted
    onboarding = report["outcomes"]["journeys"]["onboarding"]
    app = ConsoleApp(db, poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        rows = _rows(app)
        assert list(rows) == ["onboarding", "onboarding:base", "onboarding:b"]
        label, treatment, control, lift, _, numbers = rows["onboarding"]
        assert label == "onboarding"
        assert _counts(onboarding["treatment"]) in treatment
        assert _counts(onboarding["control"]) in control
        assert lift == f"{onboarding['lift']['absolute'] * 100:+.1f} pp"
        low, high = onboarding["lift"]["ci95"]
        assert numbers == f"{low * 100:+.1f} … {high * 100:+.1f}  excludes 0"
        for variant in ("base", "b"):
            cells = rows[f"onboarding:{variant}"]
            assert f"variant {variant}" in cells[0]
            assert _counts(onboarding["variants"][variant]["treatment"]) in cells[1]
            assert _counts(onboarding["control"]) in cells[2]  # the journey's one control
        legend = plain(app.screen.query_one("#outcomes-legend", Static))
        assert "Newcombe" in legend


@pytest.mark.asyncio
async def test_the_interval_is_a_bar_that_stands_clear_of_zero_and_holds_the_planted_lift(
    planted: Planted,
) -> None:
    db, report = planted
    lift = report["outcomes"]["journeys"]["onboarding"]["lift"]
    app = ConsoleApp(db, poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        bar = _rows(app)["onboarding"][4]
        legend = plain(app.screen.query_one("#outcomes-legend", Static))
    # the axis the legend names runs from minus to plus `bound` over the bar's cells
    bound = float(legend.split("axis from −")[1].split(" ")[0]) / 100
    cells = len(bar)

    def cell(value: float) -> int:
        return round((value + bound) / (2 * bound) * (cells - 1))

    zero, estimate = bar.index("│"), bar.index("●")
    drawn = [i for i, c in enumerate(bar) if c in "━●"]
    assert zero == cell(0.0) and estimate == cell(lift["absolute"])
    assert zero < drawn[0], "the interval excludes zero: the bar does not reach │"
    assert drawn[0] <= cell(PLANTED_LIFT) <= drawn[-1], "the planted lift is inside the bar"


@pytest.mark.asyncio
async def test_conversions_over_time_climb_day_by_day_to_the_reports_rates(
    planted: Planted,
) -> None:
    db, report = planted
    onboarding = report["outcomes"]["journeys"]["onboarding"]
    app = ConsoleApp(db, poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        text = plain(app.screen.query_one("#outcomes-series", Static))
        overview = app.latest.outcomes if app.latest else None
    assert overview is not None
    assert overview.days[0] == "2026-03-02" and len(overview.days) >= 14
    for group in ("treatment", "control"):
        series = overview.conversions["onboarding"][group]
        assert len(series) == len(overview.days)
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(series))
        assert series[-1] == (onboarding[group]["entered"], onboarding[group]["converted"])
        line = next(x for x in text.splitlines() if f" {group} " in x)
        rate = f"{onboarding[group]['rate'] * 100:.1f}%"
        assert line.rstrip().endswith(f"{rate} {_counts(onboarding[group])}")
        assert any(c in line for c in "▁▂▃▄▅▆▇█")
    assert "Conversion rate so far, day by day (2026-03-02 … " in text


@pytest.mark.asyncio
async def test_at_80x24_the_outcomes_view_fits_without_scrolling_sideways(
    planted: Planted,
) -> None:
    db, report = planted
    app = ConsoleApp(db, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        table = app.screen.query_one("#outcomes-table", DataTable)
        assert table.max_scroll_x == 0, "every column is on screen"
        rows = _rows(app)
        assert "●" in rows["onboarding"][4] and "━" in rows["onboarding"][4]
        rate = report["outcomes"]["journeys"]["onboarding"]["treatment"]["rate"]
        assert rows["onboarding"][1].strip() == f"{rate * 100:.1f}%"
        series = app.screen.query_one("#outcomes-series", Static)
        assert series.region.bottom <= 24 - 1, "the conversions are above the key line"
        # wider again: the counts come back
        await pilot.resize_terminal(160, 48)
        await wait_for(pilot, lambda: "/" in _rows(app)["onboarding"][1])


@pytest.mark.asyncio
async def test_a_run_without_a_control_group_says_how_to_add_one(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon", *"outcomes", "enter")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.pause()
        assert not app.screen.query_one("#outcomes-table", DataTable).display
        legend = plain(app.screen.query_one("#outcomes-legend", Static), 300)
        assert " ".join(legend.split()) == NO_EXPERIMENT


@pytest.mark.asyncio
async def test_the_customer_pane_tells_why_each_message_went_as_explain_does(
    story: Path,
) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")

        def explained() -> bool:
            snap = app.latest
            return bool(snap and snap.customer and snap.customer.explanation)

        await wait_for(pilot, explained)
        await pilot.pause()
        why = plain(app.screen.query_one("#customer-why", Static), 220)
    assert "Message c-1:onboarding:1:welcome" in why
    assert "nudge_day7: never created — not due yet" in why
    assert "alert: suppressed on push (cap:all:24h)" in why
    assert "Final outcome: sent on email at 2026-01-06T03:00:00Z" in why
