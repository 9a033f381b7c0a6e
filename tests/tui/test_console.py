"""Pilot tests of the console's views against stores the engine wrote (`worlds.STORY`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_world import start_live
from textual.widgets import DataTable, Static
from tui_support import plain, wait_for
from worlds import identify, track

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.messages import StoreUpdated
from omniconsole.tui.screens.help import HelpScreen
from omniconsole.tui.screens.journeys import FunnelScreen


def _ready_for(app: ConsoleApp, view: str) -> bool:
    snap = app.latest
    return snap is not None and snap.status.ready and snap.request.view == view


def _rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.asyncio
async def test_journeys_view_counts(story: Path) -> None:
    seen: list[StoreUpdated] = []
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(
        size=(100, 30),
        message_hook=lambda m: seen.append(m) if isinstance(m, StoreUpdated) else None,
    ) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        assert seen and seen[-1].snapshot.journeys
        rows = _rows(app.screen.query_one("#journeys-table", DataTable))
        assert [r[0] for r in rows] == [
            "fraud_alert", "onboarding", "order_confirmation", "price_drop",
            "product_recommendation",
        ]  # fmt: skip
        assert rows[1] == ["onboarding", "lifecycle", "2", "1", "1", "0", "50.0%", "4"]
        await pilot.press("down")
        steps = plain(app.screen.query_one("#journeys-steps", Static))
        assert "nudge_day7 1" in steps


@pytest.mark.asyncio
async def test_enter_drills_into_funnel_and_esc_goes_back(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.press("down", "enter")
        assert isinstance(app.screen, FunnelScreen)
        await wait_for(
            pilot, lambda: app.screen.query_one("#funnel-table", DataTable).row_count > 0
        )
        rows = _rows(app.screen.query_one("#funnel-table", DataTable))
        assert rows[2][:4] == ["nudge_day3", "0", "2", "1"]
        await pilot.press("escape")
        assert not isinstance(app.screen, FunnelScreen)


@pytest.mark.asyncio
async def test_filter_narrows_the_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.press("slash", *"promo", "enter")
        table = app.screen.query_one("#journeys-table", DataTable)
        assert [r[0] for r in _rows(table)] == ["price_drop", "product_recommendation"]
        await pilot.press("escape")  # clears the filter
        assert table.row_count == 5


@pytest.mark.asyncio
async def test_handoffs_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: _ready_for(app, "handoffs"))
        rows = _rows(app.screen.query_one("#handoffs-table", DataTable))
        assert ["01-09 09:00", "c-2", "email opened", "→ sms", "onboarding.nudge_day3",
                "sent"] in rows  # fmt: skip
        assert "email→sms 1" in plain(app.screen.query_one("#handoff-pairs", Static))


@pytest.mark.asyncio
async def test_caps_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("colon", *"caps", "enter")
        await wait_for(pilot, lambda: _ready_for(app, "caps"))
        caps = {r[0]: r[2] for r in _rows(app.screen.query_one("#caps-table", DataTable))}
        assert caps == {
            "cap:all:24h": "0",
            "cap:all:7d": "0",
            "cap:sms:24h": "1",
            "cap:whatsapp:24h": "1",
        }
        reasons = {r[0]: r[1:3] for r in _rows(app.screen.query_one("#reasons-table", DataTable))}
        assert reasons["quiet_hours"] == ["1", "0"]
        assert reasons["suppression:support_ticket"] == ["0", "2"]
        top = _rows(app.screen.query_one("#fatigued-table", DataTable))
        assert top[0][0] == "c-1"
        policy = plain(app.screen.query_one("#policy", Static))
        assert "quiet hours" in policy and "21:00–08:00" in policy


@pytest.mark.asyncio
async def test_channels_view_of_a_replay(story_parts: Path) -> None:
    app = ConsoleApp(story_parts, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: _ready_for(app, "channels"))
        rows = {r[0]: r for r in _rows(app.screen.query_one("#channels-table", DataTable))}
        assert rows["email"][1:6] == ["dry-run", "4", "0", "0", "0"]
        assert rows["push"][1:6] == ["dry-run", "1", "0", "3", "0"]


@pytest.mark.asyncio
async def test_channels_view_shows_live_adapter_health(tmp_path: Path) -> None:
    world = await start_live(tmp_path / "live.db")
    try:
        await world.accept(
            identify("l-1", "2026-03-02T13:59:00Z", push_token="tok", timezone="UTC"),
            track("l-1", "2026-03-02T14:00:00Z", "Fraud Suspected"),  # push, whose provider is down
        )
        app = ConsoleApp(world.db, poll_interval=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")

            def health() -> dict[str, str]:
                table = app.screen.query_one("#channels-table", DataTable)
                return {r[0]: r[1] for r in _rows(table)}

            await wait_for(pilot, lambda: health().get("push") == "circuit open", timeout=20)
            assert health()["email"] == "up"
            assert health()["sms"] == "not configured"
    finally:
        await world.stop()


@pytest.mark.asyncio
async def test_customer_pane_explains_suppressed_and_deferred(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")
        await wait_for(
            pilot,
            lambda: (
                _ready_for(app, "customer")
                and app.latest is not None
                and app.latest.customer is not None
                and app.latest.customer.record is not None
            ),
        )
        timeline = plain(app.screen.query_one("#customer-timeline", Static))
        assert "deferred" in timeline
        assert "quiet hours 21:00–08:00 in America/New_York (it was 22:00 there)" in timeline
        assert "suppressed" in timeline and "all-channel cap" in timeline
        consents = plain(app.screen.query_one("#customer-consents", Static))
        assert "opted out of sms" in consents
        journeys = plain(app.screen.query_one("#customer-journeys", Static))
        assert "next nudge_day7 due 01-13 03:00" in journeys
        caps = plain(app.screen.query_one("#customer-caps", Static))
        assert "1/1 full" in caps


@pytest.mark.asyncio
async def test_customer_found_by_email(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"customer bo@example.com", "enter")
        await wait_for(
            pilot,
            lambda: (
                app.latest is not None
                and app.latest.customer is not None
                and app.latest.customer.record is not None
            ),
        )
        assert app.latest is not None and app.latest.customer is not None
        assert app.latest.customer.record is not None
        assert app.latest.customer.record.customer == "c-2"


@pytest.mark.asyncio
async def test_unknown_customer_says_so(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon", *"customer nobody", "enter")
        await wait_for(pilot, lambda: app.latest is not None and app.latest.customer is not None)
        message = plain(app.screen.query_one("#customer-message", Static))
        assert "No customer matches 'nobody'" in message


@pytest.mark.asyncio
async def test_missing_store_file(tmp_path: Path) -> None:
    app = ConsoleApp(tmp_path / "later.db", poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.latest is not None)
        empty = app.screen.query_one("#empty", Static)
        assert empty.display
        assert "does not exist yet" in plain(empty)
        assert not (tmp_path / "later.db").exists()


@pytest.mark.asyncio
async def test_decisions_committed_while_attached_appear(tmp_path: Path) -> None:
    world = await start_live(tmp_path / "live.db")
    try:
        await world.accept(identify("l-1", "2026-03-02T13:59:00Z", timezone="UTC"))
        app = ConsoleApp(world.db, poll_interval=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: _ready_for(app, "journeys"))
            assert app.latest is not None and app.latest.status.decisions == 0
            await world.accept(track("l-1", "2026-03-02T14:00:00Z", "Fraud Suspected"))
            await wait_for(
                pilot, lambda: app.latest is not None and app.latest.status.decisions == 1
            )
            rows = {r[0]: r for r in _rows(app.screen.query_one("#journeys-table", DataTable))}
            await wait_for(
                pilot,
                lambda: _rows(app.screen.query_one("#journeys-table", DataTable))[0][2] == "1",
            )
            assert rows["fraud_alert"][0] == "fraud_alert"
    finally:
        await world.stop()


@pytest.mark.asyncio
async def test_help_lists_keys_and_closes(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.asyncio
async def test_theme_toggles(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t")
        assert app.theme == "textual-light"


@pytest.mark.asyncio
@pytest.mark.parametrize("partitions", [1, 2])
async def test_a_replay_runs_inside_the_console(tmp_path: Path, partitions: int) -> None:
    """`demo` and `replay --tui`: the replay runs on a worker thread (partitioned: its
    processes start from under Textual, which has taken over stderr) and fills the views."""
    from omniconsole.engine.replay import ReplayOptions
    from omniconsole.tui.demo import DemoRunner

    log = Path(__file__).resolve().parents[2] / "examples" / "sample.jsonl"
    db = tmp_path / "demo.db"
    options = ReplayOptions(
        log=log,
        db=db,
        ledger=tmp_path / "l.jsonl",
        report=tmp_path / "r.json",
        checkpoint_seconds=0.2,
        partitions=partitions,
    )
    runner = DemoRunner(log, db, options=options)
    runner.pacer.set_speed(None)
    app = ConsoleApp(db, demo=runner, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app._demo_done, timeout=60)
        assert app._demo_error is None
        await wait_for(
            pilot,
            lambda: (
                app.latest is not None
                and app.latest.status.status == "done"
                and app.latest.status.decisions >= 100
            ),
        )
