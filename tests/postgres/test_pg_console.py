"""A console attached to a PostgreSQL URL shows what it shows on SQLite — the whole
store, every partition's part as one — follows it as it is written, shows how far a
headless replay has read, and never shows a URL's password. And the engine's counts
the console reads are kept on PostgreSQL as on SQLite, an old store's folded once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from store_logs import SAMPLE, options, replay

from omniconsole.adapters.store.console import ConsoleCut, ConsoleReader
from omniconsole.adapters.store.console_rows import CustomerRecord, DecisionFilter
from omniconsole.domain.clock import Pacer
from omniconsole.engine.replay import run_replay

pytestmark = pytest.mark.postgres


def without_ids(record: CustomerRecord | None) -> CustomerRecord | None:
    """A customer's record minus event row ids (each part numbers its own rows)."""
    if record is None:
        return None
    return replace(record, events=tuple(replace(e, id=0) for e in record.events))


def what_a_console_shows(cut: ConsoleCut) -> dict[str, Any]:
    """Every view's records, as the console reads them from one cut."""
    status = cut.status()
    shown: dict[str, Any] = {
        "status": replace(status, path=""),
        "journeys": cut.journeys(),
        "channels": cut.channels(),
        "caps": cut.caps(),
        "handoff_pairs": cut.handoff_pairs(),
        "vocabulary": cut.vocabulary(),
    }
    everything = DecisionFilter()
    first = cut.decisions(everything, limit=7)
    shown["decisions"] = [first, cut.decisions(everything, first.rows[-1].key, 7)]
    vocabulary = shown["vocabulary"]
    for name in ("outcome", "channel", "reason", "journey"):
        for value in vocabulary[name][:3]:
            where = replace(everything, **{name: value})
            shown[f"decisions {name}={value}"] = cut.decisions(where, limit=5)
    shown["handoffs"] = cut.decisions(DecisionFilter(handoffs=True), limit=20)
    shown["handoffs from email"] = cut.decisions(DecisionFilter(handoff_from="email"), limit=5)
    # an id's start, a name's (any case), an email's, a phone number, a part of an email
    queries = ("c-0000", "jes", "BRIAN", "jessica.1@", "+1", "example.org")
    matches = {q: cut.find_customers(q, limit=5) for q in queries}
    shown["find"] = matches
    ids = sorted({m.customer for found in matches.values() for m in found})
    shown["customers"] = {c: without_ids(cut.customer(c)) for c in ids[:6]}
    return shown


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_console_on_a_postgresql_store_shows_what_it_shows_on_sqlite(
    pg_url: str, tmp_path: Path, partitions: int
) -> None:
    replay(SAMPLE, tmp_path / "sqlite", None, partitions)
    replay(SAMPLE, tmp_path / "pg", pg_url, partitions)
    one, two = ConsoleReader(tmp_path / "sqlite" / "store.db"), ConsoleReader(pg_url)
    try:
        with one.read() as lite, two.read() as pg:
            on_sqlite, on_pg = what_a_console_shows(lite), what_a_console_shows(pg)
            status = pg.status()
    finally:
        one.close()
        two.close()
    assert (status.state, status.status, status.mode) == ("ready", "done", "replay")
    assert (status.decisions or 0) > 1000, "the sample is there"
    assert all(on_sqlite["find"][q] for q in ("c-0000", "jes", "BRIAN", "jessica.1@"))
    assert on_sqlite["handoffs"].rows, "the sample has handoffs"
    for view, records in on_sqlite.items():
        assert on_pg[view] == records, view


def test_the_console_shows_a_postgresql_url_without_its_password(pg_url: str) -> None:
    secret = "hunter2-secret"
    url = pg_url.replace("postgres:@", f"postgres:{secret}@")
    reader = ConsoleReader(url)
    try:
        status = reader.status()
    finally:
        reader.close()
    assert secret not in status.path + status.detail and "***" in status.path
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
    checkpoints committed so far, and knows when more were; at the end, the whole run."""
    reader = ConsoleReader(pg_url)
    try:
        assert reader.status().state == "missing"
        gate = Gate(at=400)
        run = options(SAMPLE, tmp_path, pg_url, 2, checkpoint_events=20)
        runner = threading.Thread(target=run_replay, args=(run,), kwargs={"pacer": gate})
        runner.start()
        assert gate.reached.wait(120)
        mid = reader.status()
        assert not reader.changed()  # nothing committed since that read
        gate.go.set()
        runner.join(120)
        assert reader.changed()
        end = reader.status()
    finally:
        reader.close()
    assert mid.state == "ready" and mid.status == "running"
    assert 0 < (mid.decisions or 0) < (end.decisions or 0)
    assert end.status == "done"


def test_a_headless_replay_into_postgresql_says_how_far_it_has_read(
    pg_url: str, tmp_path: Path
) -> None:
    reader = ConsoleReader(pg_url)
    seen: list[int] = []

    class Watcher:
        def resuming(self, point: object) -> None: ...

        def progress(self, progress: object) -> None:
            fact = reader.progress()
            if fact is not None:
                seen.append(fact.line)

        def finished(self) -> None: ...

    try:
        run_replay(replace(options(SAMPLE, tmp_path, pg_url, 2), watcher=Watcher()))
        assert seen and seen[-1] > 0  # published while it read, outside its transactions
        assert reader.progress() is None  # and taken away once the replay was over
    finally:
        reader.close()


def test_the_counts_are_kept_as_on_sqlite_and_an_old_store_gets_them_once(
    pg_url: str, tmp_path: Path
) -> None:
    """The engine's counts equal a fold of the ledger; a store written before they were
    kept (schema 2) gets them when its writer opens it, once."""
    replay(SAMPLE, tmp_path, pg_url, 1)
    fold: Counter[tuple[object, ...]] = Counter()
    for raw in (tmp_path / "ledger.jsonl").read_bytes().splitlines():
        x = orjson.loads(raw)
        handoff = (
            f"{x['handoff_from']['channel']}>{x['channel'] or ''}" if x["handoff_from"] else ""
        )
        fold[(x["journey"], x["step"], x["channel"] or "", x["outcome"], x["reason"] or "",
              int(x["message_id"].endswith(":fallback")), handoff)] += 1  # fmt: skip

    def counted() -> Counter[tuple[object, ...]]:
        with psycopg.connect(pg_url, options="-c search_path=omniconsole") as conn:
            return Counter({tuple(key): n for *key, n in conn.execute("SELECT * FROM counters")})

    assert counted() == fold
    with psycopg.connect(pg_url, options="-c search_path=omniconsole") as conn:
        for table in ("counters", "counters_hourly", "instance_counters"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    from omniconsole.adapters.store.postgres import PostgresStore

    async def reopen() -> None:
        writer = PostgresStore.from_url(pg_url).writer()
        await writer.open(fresh=False)
        await writer.close()

    for _ in range(2):  # folded once, not twice
        asyncio.run(reopen())
        assert counted() == fold


@pytest.mark.asyncio
async def test_the_console_runs_a_replay_into_postgresql_and_shows_it(
    pg_url: str, tmp_path: Path
) -> None:
    """`demo --db postgresql://…` and `replay --tui`: the console drives the replay and
    its views fill from the PostgreSQL store; its header names the store, masked."""
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
        assert app.latest is not None and (app.latest.status.decisions or 0) >= 100
        assert app.latest.status.path.startswith("postgresql://")  # the store it shows
        assert app.store_label.startswith("postgresql://")
