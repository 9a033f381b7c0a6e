"""`explain` re-runs one customer alone and must write exactly what the engine wrote.

For random logs (those of `test_engine_properties`), replayed by the whole engine with
the example config (control groups and a variant on) and with the shipped one, every
customer's re-run gives the stored ledger lines byte for byte, and every one of those
lines gets a chain: if this failed, `explain` would refuse (or, worse, tell a wrong story).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from test_engine_properties import PROPERTY, logs, parse, replay, workdir

from omniconsole.domain.config import shipped_config_dir
from omniconsole.engine.explain import explain

EXAMPLE = shipped_config_dir() / "examples" / "holdouts"


@pytest.mark.parametrize("config", [None, EXAMPLE], ids=["shipped", "example"])
@PROPERTY
@given(log=logs())
def test_every_customers_re_run_gives_the_stored_ledger_and_explains_each_line(
    config: Path | None, log: list[dict[str, Any]]
) -> None:
    with workdir() as directory:
        lines = parse(replay(log, directory, config_dir=config))
        db = directory / "run.db"
        for customer in sorted({event["userId"] for event in log}):
            data = explain(db, customer)
            assert data["verified"], data["mismatch"]
            explained = {m["message_id"] for m in data["messages"]}
            assert explained == {x["message_id"] for x in lines if x["customer"] == customer}
