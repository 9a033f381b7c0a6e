"""Channel rules on PostgreSQL as on SQLite: the example config that turns every rule on
replays to the same ledger bytes (its extra keys, its `digested` lines), the console
shows a customer's topics, affinity and best hour the same, and the preference page of
`serve` reads the topic choices a live engine committed there.

Channel rules keep their state inside the profile (`channel_state`), so no table is
new; what these tests guard is that the state round-trips through PostgreSQL's store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from live_fakes import NOW, QUICK, MovableClock, Provider
from store_logs import SAMPLE, replay, same_outputs

from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.store import store_at
from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.domain.channels import Channel
from omniconsole.domain.config import load_config
from omniconsole.domain.events import Event
from omniconsole.engine.live import LiveEngine

pytestmark = pytest.mark.postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sqlite")
    replay(SAMPLE, out, None, 1, config_dir=EXAMPLE)
    return out


def ledger(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (out / "ledger.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize("partitions", [1, 2])
def test_the_example_config_replays_on_postgresql_to_the_same_ledger_as_on_sqlite(
    on_sqlite: Path, pg_url: str, tmp_path: Path, partitions: int
) -> None:
    replay(SAMPLE, tmp_path, pg_url, partitions, config_dir=EXAMPLE)
    assert same_outputs(on_sqlite, tmp_path) == []
    lines = ledger(tmp_path)
    assert any(x["outcome"] == "digested" for x in lines)
    assert any("affinity" in x for x in lines) and any("send_at" in x for x in lines)


def test_the_console_shows_topics_affinity_and_the_best_hour_on_postgresql_as_on_sqlite(
    on_sqlite: Path, pg_url: str, tmp_path: Path
) -> None:
    replay(SAMPLE, tmp_path, pg_url, 2, config_dir=EXAMPLE)
    lines = ledger(on_sqlite)
    # customers whose lines show each rule at work
    keys = ("topic_off", "digest", "send_at", "switched_from", "affinity")
    customers = sorted({next(x["customer"] for x in lines if k in x) for k in keys})
    lite, pg = ConsoleReader(on_sqlite / "store.db"), ConsoleReader(pg_url)
    try:
        with lite.read() as one, pg.read() as two:
            for customer in customers:
                left, right = one.customer(customer), two.customer(customer)
                assert left is not None and right is not None
                assert left.channels is not None, customer
                assert right.channels == left.channels, customer
    finally:
        lite.close()
        pg.close()


def test_the_preference_page_reads_the_topics_a_live_engine_committed_to_postgresql(
    pg_url: str,
) -> None:
    engine = LiveEngine(
        load_config(EXAMPLE),
        store_at(pg_url),
        {Channel.EMAIL: Provider()},
        None,
        Metrics(),
        delivery=QUICK,
        clock=MovableClock(),
        tick=0.05,
        poll=0.05,
    )
    engine.start()
    try:
        events = [
            Event("identify", "c-1", NOW, traits={"email": "ana@example.com",
                  "topics": {"deals": {"push": False}}}, message_id="c-1-id"),
            Event("track", "c-1", NOW, "Unsubscribed",
                  properties={"topic": "recommendations", "channel": "email"},
                  message_id="c-1-unsub"),
        ]  # fmt: skip
        assert engine.submit(events).result(10).accepted == 2
        state = asyncio.run(engine.channel_state("c-1"))
        assert asyncio.run(engine.channel_state("nobody")) is None
    finally:
        engine.stop()
    assert state is not None
    assert state.topics == {"deals": {"push": False}, "recommendations": {"email": False}}
