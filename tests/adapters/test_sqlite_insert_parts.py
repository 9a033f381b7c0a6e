"""A batch goes to SQLite as INSERTs of few distinct sizes, so the statements SQLite
keeps prepared stay few and memory stays flat however the batch sizes vary."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from omniconsole.adapters.store.sqlite import insert_parts


@settings(deadline=None)  # a shared machine: no per-example time limit
@given(rows=st.integers(0, 50_000), per=st.integers(1, 3000))
def test_a_batch_is_cut_into_full_inserts_and_powers_of_two_covering_every_row(
    rows: int, per: int
) -> None:
    parts = list(insert_parts(rows, per))
    assert sum(parts) == rows
    assert all(p == per or (p < per and p & (p - 1) == 0) for p in parts)
    assert parts == sorted(parts, reverse=True)  # the rows keep their order of arrival


def test_batches_of_every_size_prepare_a_bounded_number_of_statements(tmp_path: Path) -> None:
    per = 1000
    shapes = {p for rows in range(1, 5 * per) for p in insert_parts(rows, per)}
    assert len(shapes) <= per.bit_length() + 1  # not one per size: ~11, not 1,000
    # and SQLite takes them: every row written, in order
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    values = list(range(2 * per + 777))
    start = 0
    for count in insert_parts(len(values), per):
        conn.execute(
            "INSERT INTO t (v) VALUES " + ", ".join(["(?)"] * count), values[start : start + count]
        )
        start += count
    assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY id")] == values
    conn.close()
