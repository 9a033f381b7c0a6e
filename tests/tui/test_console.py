"""Pilot tests of the console's views against stores the engine wrote (`worlds.STORY`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_console_world import start_live
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from tui_support import plain, wait_for
from worlds import identify, track

from omniconsole.tui.app import ConsoleApp
from omniconsole.tui.commands import COMMANDS
from omniconsole.tui.messages import StoreUpdated
from omniconsole.tui.screens.decisions import DecisionsScreen
from omniconsole.tui.screens.help import HelpScreen
from omniconsole.tui.screens.journeys import FunnelScreen


def _ready_for(app: ConsoleApp, view: str) -> bool:
    snap = app.latest
    return snap is not None and snap.status.ready and snap.request.view == view


def _rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _table(app: ConsoleApp, selector: str) -> DataTable[object]:
    return app.screen.query_one(selector, DataTable)


async def _customer_shown(pilot: Pilot[None], app: ConsoleApp, customer: str) -> None:
    def shown() -> bool:
        snap = app.latest
        return (
            snap is not None
            and snap.customer is not None
            and snap.customer.record is not None
            and snap.customer.record.customer == customer
        )

    await wait_for(pilot, shown)
    await pilot.pause()


async def _page(pilot: Pilot[None], app: ConsoleApp, view: str, text: str) -> str:
    """Wait until the view's page line reads `text` somewhere; return it."""

    def line() -> str:
        if not isinstance(app.screen, DecisionsScreen) or not _ready_for(app, view):
            return ""
        return plain(app.screen.query_one(f"#{view}-hint", Static))

    await wait_for(pilot, lambda: text in line())
    return line()


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
        rows = _rows(_table(app, "#journeys-table"))
        assert [r[0] for r in rows] == [
            "fraud_alert", "onboarding", "order_confirmation", "price_drop",
            "product_recommendation",
        ]  # fmt: skip
        assert rows[1] == ["onboarding", "lifecycle", "3", "2", "1", "0", "33.3%", "7"]
        # journeys without a goal have no conversion rate (not 0.0%)
        assert rows[3] == ["price_drop", "promo", "3", "0", "—", "3", "—", "1"]
        await pilot.press("down")
        steps = plain(app.screen.query_one("#journeys-steps", Static))
        assert "nudge_day7 2" in steps


@pytest.mark.asyncio
async def test_the_funnel_counts_customers_and_a_count_opens_its_decisions(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(110, 30)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.press("down", "enter")
        assert isinstance(app.screen, FunnelScreen)
        await wait_for(pilot, lambda: _table(app, "#funnel-table").row_count > 0)
        rows = _rows(_table(app, "#funnel-table"))
        # welcome: 3 customers entered, 3 were sent it — c-7's bounce re-sent in the app
        # is a fallback, not a fourth customer
        assert rows[0][:7] == ["welcome", "0", "3", "1", "0", "0", "0"]
        assert rows[2][:5] == ["nudge_day3", "0", "3", "0", "1"]
        await pilot.press("right", "right", "enter")  # the Sent count of welcome
        assert isinstance(app.screen, DecisionsScreen)
        line = await _page(pilot, app, "decisions", "of 4")
        assert line.startswith("1–4 of 4")  # the 3 sends and the fallback
        bar = plain(app.screen.query_one("#decisions-bar", Static))
        assert "outcome=sent · journey=onboarding · step=welcome" in bar


@pytest.mark.asyncio
async def test_filter_narrows_the_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        await pilot.press("slash", *"promo", "enter")
        table = _table(app, "#journeys-table")
        assert [r[0] for r in _rows(table)] == ["price_drop", "product_recommendation"]
        await pilot.press("escape")  # clears the filter
        assert table.row_count == 5


@pytest.mark.asyncio
async def test_columns_sort_and_reverse(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        table = _table(app, "#journeys-table")
        await pilot.press("s", "s", "s")  # Journey, Category, then Entered: most first
        assert [r[2] for r in _rows(table)] == ["3", "3", "2", "2", "1"]
        await pilot.press("S")
        assert [r[2] for r in _rows(table)] == ["1", "2", "2", "3", "3"]


@pytest.mark.asyncio
async def test_handoffs_view(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await _page(pilot, app, "handoffs", "of 1")
        rows = _rows(_table(app, "#handoffs-table"))
        assert rows == [["01-09 09:00", "c-2", "email opened", "→ sms", "onboarding.nudge_day3"]]
        assert "email→sms 1" in plain(app.screen.query_one("#handoffs-bar", Static))


@pytest.mark.asyncio
async def test_handoffs_are_filtered_and_paged_over_the_whole_store(sample_store: Path) -> None:
    app = ConsoleApp(sample_store, poll_interval=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        line = await _page(pilot, app, "handoffs", "of 276")
        assert line.startswith("1–100 of 276, newest first · n older")
        await pilot.press("n")
        await _page(pilot, app, "handoffs", "101–200 of 276")
        await pilot.press("n")
        await _page(pilot, app, "handoffs", "201–276 of 276")
        assert app.latest is not None
        pairs = dict(app.latest.handoff_pairs)
        await pilot.press("slash", *"email whatsapp", "enter")
        line = await _page(pilot, app, "handoffs", f"1–{pairs['email→whatsapp']} of")
        assert line.startswith(f"1–{pairs['email→whatsapp']} of {pairs['email→whatsapp']},")
        rows = _rows(_table(app, "#handoffs-table"))
        assert rows and all(r[2].startswith("email") and r[3] == "→ whatsapp" for r in rows)


@pytest.mark.asyncio
async def test_decisions_view_filters_pages_and_opens_the_customer(sample_store: Path) -> None:
    app = ConsoleApp(sample_store, poll_interval=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("6")
        line = await _page(pilot, app, "decisions", "of 1,372")
        assert line.startswith("1–100 of 1,372, newest first")
        table = _table(app, "#decisions-table")
        times = [r[0] for r in _rows(table)]
        assert times == sorted(times, reverse=True)
        await pilot.press("n")
        await _page(pilot, app, "decisions", "101–200 of 1,372")
        await pilot.press("p")
        await _page(pilot, app, "decisions", "1–100 of 1,372")
        await pilot.press("slash", *"reason quiet_hours", "enter")
        await _page(pilot, app, "decisions", "newest first")
        await wait_for(pilot, lambda: all(r[5] == "quiet_hours" for r in _rows(table)))
        assert {r[4] for r in _rows(table)} == {"deferred"}
        customer = _rows(table)[0][1]
        await pilot.press("enter")
        await _customer_shown(pilot, app, customer)


@pytest.mark.asyncio
async def test_a_decisions_command_takes_a_filter_and_a_row_can_be_yanked(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("colon", *"decisions outcome:suppressed channel none", "enter")
        await _page(pilot, app, "decisions", "1–1 of 1")
        rows = _rows(_table(app, "#decisions-table"))
        assert rows == [["01-08 10:00", "c-6", "fraud_alert.alert", "none", "suppressed",
                         "unreachable"]]  # fmt: skip
        await pilot.press("y")
        assert app.clipboard == "c-6"
        await pilot.press("Y")
        assert app.clipboard == "c-6:fraud_alert:1:alert"


@pytest.mark.asyncio
async def test_caps_view_and_a_reason_opens_its_decisions(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("colon", *"caps", "enter")
        await wait_for(pilot, lambda: _ready_for(app, "caps"))
        caps = {r[0]: r[2] for r in _rows(_table(app, "#caps-table"))}
        assert caps == {
            "cap:all:24h": "0",
            "cap:all:7d": "0",
            "cap:sms:24h": "0",
            "cap:whatsapp:24h": "1",
        }
        reasons = {r[0]: r[1:3] for r in _rows(_table(app, "#reasons-table"))}
        assert reasons["quiet_hours"] == ["1", "0"]
        assert reasons["suppression:support_ticket"] == ["0", "2"]
        assert _rows(_table(app, "#fatigued-table"))[0][0] == "c-1"
        policy = plain(app.screen.query_one("#policy", Static))
        assert "quiet hours" in policy and "21:00–08:00" in policy
        _table(app, "#reasons-table").focus()
        await pilot.press("enter")  # the biggest reason: suppression:support_ticket
        await _page(pilot, app, "decisions", "1–2 of 2")
        assert {r[5] for r in _rows(_table(app, "#decisions-table"))} == {
            "suppression:support_ticket"
        }


@pytest.mark.asyncio
async def test_channels_view_of_a_replay(story_parts: Path) -> None:
    app = ConsoleApp(story_parts, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: _ready_for(app, "channels"))
        rows = {r[0]: r for r in _rows(_table(app, "#channels-table"))}
        assert rows["email"][1:6] == ["dry-run", "6", "0", "0", "0"]
        assert rows["push"][1:6] == ["dry-run", "1", "0", "3", "0"]
        assert rows["(none)"][1:6] == ["", "0", "0", "1", "0"]
        assert not any("unknown" in cell for row in rows.values() for cell in row)
        await pilot.press("down", "right", "right", "right", "right", "enter")  # sms? no: push
        assert isinstance(app.screen, DecisionsScreen)


@pytest.mark.asyncio
async def test_channels_view_shows_live_adapter_health(tmp_path: Path) -> None:
    world = await start_live(tmp_path / "live.db")
    try:
        await world.accept(
            identify("l-1", "2026-03-02T13:59:00Z", push_token="tok", timezone="UTC"),
            track("l-1", "2026-03-02T14:00:00Z", "Fraud Suspected"),  # push: provider down
        )
        app = ConsoleApp(world.db, poll_interval=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")

            def health() -> dict[str, str]:
                return {r[0]: r[1] for r in _rows(_table(app, "#channels-table"))}

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
        await _customer_shown(pilot, app, "c-1")
        timeline = plain(app.screen.query_one("#customer-timeline", Static))
        assert "deferred" in timeline
        assert "quiet hours 21:00–08:00 in America/New_York (it was 22:00 there)" in timeline
        assert "suppressed" in timeline and "all-channel cap" in timeline
        assert "continues from their sms" not in timeline  # a STOP is consent, not engagement
        consents = plain(app.screen.query_one("#customer-consents", Static))
        assert "opted out of sms" in consents
        journeys = plain(app.screen.query_one("#customer-journeys", Static))
        assert "next nudge_day7 due 01-13 03:00" in journeys
        caps = plain(app.screen.query_one("#customer-caps", Static))
        assert "1/1 full" in caps


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("typed", "customer"),
    [
        ("+44 7700 900513", "c-2"),
        ("447700900513", "c-2"),
        ("whatsapp:+447700900513", "c-2"),
        ("07700 900513", "c-2"),
        ("bo@", "c-2"),
        ("Gil", "c-7"),
    ],
)
async def test_the_find_box_takes_what_agents_type(story: Path, typed: str, customer: str) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5", "f", *typed, "enter")
        await _customer_shown(pilot, app, customer)


@pytest.mark.asyncio
async def test_several_matches_are_listed_and_enter_opens_one(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"customer @example", "enter")
        await wait_for(pilot, lambda: _table(app, "#customer-matches").row_count == 6)
        assert _rows(_table(app, "#customer-matches"))[0][:2] == ["c-1", "ana"]
        await pilot.press("enter")
        await _customer_shown(pilot, app, "c-1")


@pytest.mark.asyncio
async def test_unknown_customer_says_so(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon", *"customer nobody", "enter")
        await wait_for(pilot, lambda: app.latest is not None and app.latest.customer is not None)
        message = plain(app.screen.query_one("#customer-message", Static))
        assert "No customer matches 'nobody'" in message


@pytest.mark.asyncio
async def test_after_a_search_the_keys_are_commands_again(story: Path) -> None:
    """The find box must not keep the focus: `2` opens Handoffs rather than typing a 2,
    and after an unknown `:foo` the next `:theme` is a command, not a search."""
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5", "f", *"nobody", "enter")
        await wait_for(pilot, lambda: app.latest is not None and app.latest.customer is not None)
        await pilot.press("colon", *"foo", "enter")
        await pilot.press("colon", *"theme", "enter")
        assert app.theme == "textual-light"
        search = app.screen.query_one("#customer-search", Input)
        assert "theme" not in search.value
        await pilot.press("2")
        assert app.current_mode == "handoffs"


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
            await wait_for(pilot, lambda: _rows(_table(app, "#journeys-table"))[0][2] == "1")
    finally:
        await world.stop()


@pytest.mark.asyncio
async def test_help_lists_every_key_and_command_and_closes(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(plain(s, 120) for s in app.screen.query(Static))
        for command in COMMANDS:
            assert f":{command.name}" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.asyncio
async def test_an_unknown_command_lists_every_command(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon", *"frobnicate", "enter")
        [note] = list(app._notifications)
        for command in COMMANDS:
            assert command.name in note.message


@pytest.mark.asyncio
async def test_the_header_names_the_store_and_keeps_the_decision_count(story: Path) -> None:
    app = ConsoleApp(story, poll_interval=0.05, store_label="/data/story.db")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: _ready_for(app, "journeys"))
        assert app.latest is not None
        header = app.status_text(app.latest, "journeys").plain
        assert header.index("15 decisions") < 40  # on screen at 80 columns
        assert "sim 2026-01-10 12:00Z" in header and header.endswith("/data/story.db")


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


@pytest.mark.asyncio
async def test_customer_pane_shows_topics_affinity_and_the_best_hour(channels_story: Path) -> None:
    app = ConsoleApp(channels_story, poll_interval=0.05)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")
        await _customer_shown(pilot, app, "c-1")
        channels = plain(app.screen.query_one("#customer-channels", Static))
        assert "topic deals" in channels and "off on push" in channels
        assert "affinity" in channels and "email 0." in channels
        assert "best hour" in channels and "19:00 local, their most engaged hour" in channels
        timeline = plain(app.screen.query_one("#customer-timeline", Static))
        assert "opens a 6h digest" in timeline
        assert "↳ digested" in timeline and "joined the open 6h digest of" in timeline


@pytest.mark.asyncio
async def test_the_channels_section_is_hidden_when_the_run_has_no_channel_rules(
    story: Path,
) -> None:
    app = ConsoleApp(story, poll_interval=0.05)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")
        await _customer_shown(pilot, app, "c-1")
        assert app.screen.query_one("#customer-channels", Static).display is False
        assert plain(app.screen.query_one("#customer-consents", Static))


@pytest.mark.asyncio
async def test_the_timeline_filter_finds_a_digest_and_the_trigger_that_joined_it(
    channels_story: Path,
) -> None:
    app = ConsoleApp(channels_story, poll_interval=0.05)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")
        await _customer_shown(pilot, app, "c-1")
        await pilot.press("slash", *"digest", "enter")

        def title() -> str:
            return plain(app.screen.query_one("#customer-timeline", Static))

        await wait_for(pilot, lambda: "2 match “digest”" in title())
        shown = title()
        assert "↳ digested price_drop.alert" in shown  # the 11:00 trigger that joined
        assert "deferred price_drop.alert on email" in shown  # the 10:00 digest it joined
        assert "Message Opened" not in shown
