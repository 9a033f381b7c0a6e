"""Control groups, lift and explain on a PostgreSQL store: a planted-lift log replayed
with the example config writes the same ledger and report as on SQLite, the console's
Outcomes query reads the same treatment against control, and `explain` tells the same
chain of a held-out and a sent message — one store or every partition's part as one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from store_logs import replay, same_outputs

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.console_rows import OutcomesOverview
from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.generator import PlantedLift, write_log
from omniconsole.engine.explain import ExplainError, explain

pytestmark = pytest.mark.postgres

EXAMPLE = shipped_config_dir() / "examples" / "holdouts"
PLANTED = 0.08


def planted_log(path: Path) -> Path:
    """2,000 customers, an onboarding lift of 8 points planted for the treated."""
    plant = PlantedLift(load_config(EXAMPLE), {"onboarding": PLANTED})
    write_log(path, 2000, 14, 11, datetime(2026, 3, 2, tzinfo=UTC), events_per_customer=4,
              plant=plant)  # fmt: skip
    return path


def outcomes(location: str | Path) -> OutcomesOverview:
    reader = ConsoleReader(location)
    try:
        with reader.read() as cut:
            return cut.outcomes()
    finally:
        reader.close()


def first_line(ledger: Path, outcome: str) -> dict[str, Any]:
    for raw in ledger.read_bytes().splitlines():
        line: dict[str, Any] = orjson.loads(raw)
        if line["outcome"] == outcome:
            return line
    raise AssertionError(f"no {outcome} line in {ledger}")


@pytest.mark.parametrize("partitions", [1, 2])
def test_holdouts_on_postgresql_report_show_and_explain_what_they_do_on_sqlite(
    pg_url: str, tmp_path: Path, partitions: int
) -> None:
    log = planted_log(tmp_path / "planted.jsonl")
    lite = replay(log, tmp_path / "sqlite", None, partitions, config_dir=EXAMPLE)
    pg = replay(log, tmp_path / "pg", pg_url, partitions, config_dir=EXAMPLE)
    assert same_outputs(tmp_path / "sqlite", tmp_path / "pg") == []
    assert pg["outcomes"] == lite["outcomes"]
    assert "held_out" in pg["decisions"] and pg["decisions"]["held_out"] > 0

    on_sqlite, on_pg = outcomes(tmp_path / "sqlite" / "store.db"), outcomes(pg_url)
    assert on_pg == on_sqlite
    assert on_pg.report == pg["outcomes"], "the console reads what the report says"
    onboarding = pg["outcomes"]["journeys"]["onboarding"]
    for group in ("treatment", "control"):
        last = on_pg.conversions["onboarding"][group][-1]
        assert last == (onboarding[group]["entered"], onboarding[group]["converted"])

    ledger = tmp_path / "pg" / "ledger.jsonl"
    for outcome in ("held_out", "sent"):
        message = first_line(ledger, outcome)["message_id"]
        told = explain(pg_url, message)
        assert told == explain(tmp_path / "sqlite" / "store.db", message)
        assert told["verified"] and told["final"]["outcome"] == outcome


def test_explain_names_a_postgresql_store_without_its_password(pg_url: str, tmp_path: Path) -> None:
    replay(planted_log(tmp_path / "planted.jsonl"), tmp_path / "pg", pg_url, 1,
           config_dir=EXAMPLE)  # fmt: skip
    secret = "hunter2-secret"
    url = pg_url.replace("postgres:@", f"postgres:{secret}@")
    with pytest.raises(ExplainError) as caught:
        explain(url, "nobody-at-all")
    assert "nobody-at-all" in str(caught.value)
    assert secret not in str(caught.value) and "***" in str(caught.value)
