"""A console attached to a PostgreSQL URL sees the whole store — every partition's part
— as a console sees a SQLite store, and follows it as it is written."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from store_logs import SAMPLE, options, replay

from omniconsole.adapters.store.reader import CustomerContext, StoreReader
from omniconsole.domain.clock import Pacer
from omniconsole.engine.replay import run_replay

pytestmark = pytest.mark.postgres


def without_ids(context: CustomerContext | None) -> CustomerContext | None:
    """A customer's context minus ledger row ids (each part numbers its own rows)."""
    if context is None:
        return None
    return replace(context, messages=tuple(replace(m, id=0) for m in context.messages))


def test_the_console_reads_a_partitioned_postgresql_store_as_a_sqlite_one(
    pg_url: str, tmp_path: Path
) -> None:
    replay(SAMPLE, tmp_path / "sqlite")
    replay(SAMPLE, tmp_path / "pg", pg_url, 2)
    one, two = StoreReader(tmp_path / "sqlite" / "store.db"), StoreReader(pg_url)
    try:
        s1, s2 = one.status(), two.status()
        assert (s2.state, s2.status, s2.mode) == ("ready", "done", "replay")
        assert (s2.customers, s2.ledger_rows, s2.clock) == (s1.customers, s1.ledger_rows, s1.clock)
        assert two.journeys() == one.journeys()
        assert two.channels() == one.channels()
        assert two.caps() == one.caps()
        assert two.handoffs()[1:] == one.handoffs()[1:]
        found = one.find_customers("c", limit=5)
        assert found and two.find_customers("c", limit=5) == found
        email = one.customer(found[0].customer)
        assert email is not None
        for match in found:
            assert without_ids(two.customer(match.customer)) == without_ids(
                one.customer(match.customer)
            )
    finally:
        one.close()
        two.close()


def test_the_console_shows_the_url_without_its_password(pg_url: str) -> None:
    secret = "hunter2-secret"
    url = pg_url.replace("postgres:@", f"postgres:{secret}@")
    reader = StoreReader(url)
    try:
        status = reader.status()
    finally:
        reader.close()
    assert secret not in status.path + status.message and "***" in status.path
    assert status.state == "missing"


class Gate(Pacer):
    """Holds the replay before its `at`-th batch until the test has looked."""

    def __init__(self, at: int) -> None:
        super().__init__(None)
        self.at, self.reached, self.go = at, threading.Event(), threading.Event()

    def wait_for(self, sim: object) -> bool:
        self.at -= 1
        if self.at == 0:
            self.reached.set()
            self.go.wait(60)
        return True


def test_a_console_attached_before_the_run_follows_it_live(pg_url: str, tmp_path: Path) -> None:
    """Attached before the store exists, the console waits; mid-run it sees the
    checkpoints committed so far; at the end, the whole run."""
    reader = StoreReader(pg_url)
    try:
        assert reader.status().state == "missing"
        gate = Gate(at=400)
        run = options(SAMPLE, tmp_path, pg_url, 2, checkpoint_events=200)
        runner = threading.Thread(target=run_replay, args=(run,), kwargs={"pacer": gate})
        runner.start()
        assert gate.reached.wait(120)
        mid = reader.status()
        gate.go.set()
        runner.join(120)
        end = reader.status()
    finally:
        reader.close()
    assert mid.state == "ready" and mid.status == "running"
    assert 0 < (mid.ledger_rows or 0) < (end.ledger_rows or 0)
    assert end.status == "done"


@pytest.mark.asyncio
async def test_the_console_runs_a_replay_into_postgresql_and_shows_it(
    pg_url: str, tmp_path: Path
) -> None:
    """`demo --db postgresql://…` and `replay --tui`: the console drives the replay and
    its views fill from the PostgreSQL store."""
    from omniconsole.tui.app import ConsoleApp
    from omniconsole.tui.demo import DemoRunner

    run = replace(options(SAMPLE, tmp_path, pg_url, 2), checkpoint_seconds=0.2)
    runner = DemoRunner(SAMPLE, tmp_path / "demo.db", options=run)
    runner.pacer.set_speed(None)
    app = ConsoleApp(pg_url, demo=runner, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(1200):  # up to 60 s of the app's own time, in steps
            latest = app.latest
            if app._demo_done and latest is not None and latest.status.status == "done":
                break
            await pilot.pause(0.05)
        assert app._demo_error is None
        assert app.latest is not None and (app.latest.status.ledger_rows or 0) >= 100
        assert app.latest.status.path.startswith("postgresql://")  # the store it shows
