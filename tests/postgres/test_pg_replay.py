"""A replay over PostgreSQL is the same replay: same ledger bytes, report and rejects.

What a user would notice: moving `--db` from a file to a `postgresql://` URL changes
nothing in what the run writes out, whatever the partitions, stopped and resumed or not.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import orjson
import psycopg
import pytest
from store_logs import (
    AWKWARD_CUSTOMERS,
    SAMPLE,
    options,
    replay,
    same_outputs,
    signups_at_one_instant,
    write_tricky_log,
)

from omniconsole.adapters.store import store_at
from omniconsole.cli import main
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import shipped_config_dir
from omniconsole.engine import seen_ids
from omniconsole.engine.replay import run_replay

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def tricky_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tricky_log(tmp_path_factory.mktemp("log") / "events.jsonl")


@pytest.fixture(scope="module")
def on_sqlite(tricky_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tricky log replayed in-process on SQLite: the reference outputs."""
    out = tmp_path_factory.mktemp("sqlite")
    replay(tricky_log, out)
    return out


@pytest.mark.parametrize("partitions", [1, 3])
def test_a_replay_on_postgresql_writes_the_same_ledger_report_and_rejects_as_on_sqlite(
    tricky_log: Path, on_sqlite: Path, pg_url: str, tmp_path: Path, partitions: int
) -> None:
    report = replay(tricky_log, tmp_path, pg_url, partitions)
    assert same_outputs(on_sqlite, tmp_path) == []
    events = report["events"]
    assert events["late"] >= 1 and events["duplicates"] >= 1 and events["rejected"] >= 2


def test_colliding_message_id_digests_are_settled_by_postgresql_as_by_sqlite(
    tricky_log: Path,
    on_sqlite: Path,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The duplicate check asks the store about ids whose digests it holds: with every
    digest colliding and few ids kept exactly, PostgreSQL answers nearly every check."""
    monkeypatch.setattr(seen_ids, "DIGEST", lambda mid: len(mid) % 3)
    monkeypatch.setattr(seen_ids, "WINDOW", 8)
    replay(tricky_log, tmp_path, pg_url, 2, checkpoint_events=200)
    assert same_outputs(on_sqlite, tmp_path) == []


def test_the_ledger_orders_customers_by_their_bytes_as_on_sqlite(
    on_sqlite: Path, pg_url: str, tricky_log: Path, tmp_path: Path
) -> None:
    """Customers decided at the same instant are in byte order ('CUST-b' < 'Cust-a' <
    'cust 1' < 'cust-10' < 'cust-9' < 'cust-é' < 'cust_a' < 'émile'), which a language
    collation would not give."""
    replay(tricky_log, tmp_path, pg_url, 2)
    ledger = [orjson.loads(line) for line in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    welcomes = [d["customer"] for d in ledger if d["customer"] in AWKWARD_CUSTOMERS]
    assert len(set(welcomes)) == len(AWKWARD_CUSTOMERS)
    firsts = list(dict.fromkeys(welcomes))
    assert firsts == sorted(AWKWARD_CUSTOMERS, key=lambda c: c.encode())
    assert (tmp_path / "ledger.jsonl").read_bytes() == (on_sqlite / "ledger.jsonl").read_bytes()


class StopAfter(Pacer):
    """A console's pacer whose operator quits after `steps` steps of simulated time."""

    def __init__(self, steps: int) -> None:
        super().__init__(None)
        self.steps = steps

    def wait_for(self, sim: datetime) -> bool:
        self.steps -= 1
        return self.steps > 0


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_replay_stopped_on_postgresql_resumes_to_the_same_ledger(
    pg_url: str, tmp_path: Path, partitions: int
) -> None:
    whole = replay(SAMPLE, tmp_path / "whole")
    stopped = options(SAMPLE, tmp_path / "stopped", pg_url, partitions)
    run_replay(stopped, pacer=StopAfter(300))
    with contextlib.closing(store_at(pg_url).reader()) as reader:
        meta = reader.meta()
    assert meta["status"] == "stopped" and 0 < int(meta["checkpoint_line"]) < 2862
    assert run_replay(replace(stopped, resume=True)) == whole
    assert same_outputs(tmp_path / "whole", tmp_path / "stopped") == []


def test_a_fresh_run_drops_the_parts_of_an_earlier_run(pg_url: str, tmp_path: Path) -> None:
    replay(SAMPLE, tmp_path, pg_url, 3)
    replay(SAMPLE, tmp_path, pg_url, 2)
    with psycopg.connect(pg_url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert {"omniconsole", "omniconsole_p0", "omniconsole_p1"} <= schemas
    assert "omniconsole_p2" not in schemas


def test_the_url_may_name_the_schema_so_two_runs_share_a_database(
    pg_url: str, tmp_path: Path
) -> None:
    replay(SAMPLE, tmp_path / "a", f"{pg_url}&schema=run_a", 2)
    replay(SAMPLE, tmp_path / "b", f"{pg_url}&schema=run_b", 1)
    assert same_outputs(tmp_path / "a", tmp_path / "b") == []
    with psycopg.connect(pg_url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert {"run_a", "run_a_p0", "run_a_p1", "run_b"} <= schemas


def test_the_command_line_replays_into_postgresql_and_inbox_reads_it(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path
    code = main(["replay", str(SAMPLE), "--db", pg_url, "--ledger", str(out / "ledger.jsonl"),
                 "--report", str(out / "report.json"), "--partitions", "2"])  # fmt: skip
    assert code == 0
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT customer FROM omniconsole_p0.inbox LIMIT 1").fetchone()
    assert row is not None, "the sample sends in-app messages"
    capsys.readouterr()
    assert main(["inbox", row[0], "--db", pg_url]) == 0
    shown = capsys.readouterr().out
    assert shown.strip() and "no in-app messages" not in shown


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_customer_quarantined_in_a_partition_is_in_the_rejects_as_on_sqlite(
    pg_url: str, tmp_path: Path, partitions: int
) -> None:
    """A customer whose events fail is quarantined by its partition, in its part's
    schema: the rejects list its lines among the driver's own, in SQLite's order."""
    config = tmp_path / "config"
    shutil.copytree(shipped_config_dir(), config)
    (config / "journeys" / "far_future.toml").write_text(
        'name = "far_future"\ncategory = "lifecycle"\n[entry]\nevent = "Joined Club"\n'
        'rule = "every"\n[[step]]\nname = "remind"\nafter = "520000w"\nchannels = ["email"]\n'
    )  # its step is due after datetime's end: entering it raises OverflowError
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join([
        b'{"type":"identify","userId":"q-1","timestamp":"2026-03-02T08:00:00Z",'
        b'"traits":{"email":"q@example.com"}}',
        b'{"type":"track","userId":"q-1","event":"Joined Club","timestamp":"2026-03-02T08:00:01Z"}',
        b"{not json",
        b'{"type":"track","userId":"q-1","event":"Signed Up","timestamp":"2026-03-02T09:00:00Z"}',
        *signups_at_one_instant("2026-03-02T09:30:00Z"),
    ]) + b"\n")  # fmt: skip
    on_sqlite = replay(log, tmp_path / "sqlite", None, partitions, config_dir=config)
    assert replay(log, tmp_path / "pg", pg_url, partitions, config_dir=config) == on_sqlite
    assert same_outputs(tmp_path / "sqlite", tmp_path / "pg") == []
    rejects = [
        orjson.loads(x) for x in (tmp_path / "pg" / "rejects.jsonl").read_bytes().splitlines()
    ]
    assert [r["line"] for r in rejects] == [2, 3, 4]
    assert "OverflowError" in rejects[0]["reason"] and "is quarantined" in rejects[2]["reason"]
    with contextlib.closing(store_at(pg_url).reader()) as reader:
        assert list(reader.quarantined()) == ["q-1"]
