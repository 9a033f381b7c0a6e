"""How to keep partitions apart in one PostgreSQL database: a schema each, or one table
with a `partition` column — measured the way partitions write and the export reads.

    .venv/bin/python benchmarks/pg_layout.py [--writers 1,2,4]

Each writer is its own process (as a partition is) and commits 30 checkpoints, each a
COPY of 5,000 ledger rows plus an upsert of 1,000 profiles; all writers use the same
timestamps, so in a shared table their keys interleave in one index. Then the ledger
export's query, `ORDER BY ts, customer, seq` over every partition's rows, is timed with
its plan. The database is a throwaway pgserver with default (durable) settings.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKPOINTS, ROWS, PROFILES = 30, 5000, 1000
T = 'text COLLATE "C"'


def ddl(layout: str, writers: int) -> list[str]:
    """The tables of `layout` for `writers` partitions (and the readers' view)."""
    ledger = f"ts bigint NOT NULL, customer {T} NOT NULL, seq int NOT NULL, line {T} NOT NULL"
    profile = f"customer {T} PRIMARY KEY, state {T} NOT NULL"
    if layout == "column":
        return [f"CREATE TABLE ledger (partition int NOT NULL, {ledger})",
                "CREATE UNIQUE INDEX ON ledger (ts, customer, seq)",
                "CREATE INDEX ON ledger (customer, ts)",
                f"CREATE TABLE profiles (partition int NOT NULL, {profile})"]  # fmt: skip
    out = []
    for p in range(writers):
        out += [f"CREATE SCHEMA p{p}", f"CREATE TABLE p{p}.ledger ({ledger})",
                f"CREATE UNIQUE INDEX ON p{p}.ledger (ts, customer, seq)",
                f"CREATE INDEX ON p{p}.ledger (customer, ts)",
                f"CREATE TABLE p{p}.profiles ({profile})"]  # fmt: skip
    union = " UNION ALL ".join(f"SELECT * FROM p{p}.ledger" for p in range(writers))
    return [*out, f"CREATE VIEW ledger AS {union}"]


def writer(url: str, layout: str, p: int, go: Any, out: Any) -> None:
    import psycopg

    base = 1_767_225_600_000_000
    table, extra = (f"p{p}.", ()) if layout == "schemas" else ("", (p,))
    columns = (
        "ts, customer, seq, line" if layout == "schemas" else "partition, ts, customer, seq, line"
    )
    pcols = "customer, state" if layout == "schemas" else "partition, customer, state"
    with psycopg.connect(url) as conn:
        go.wait()
        started = time.perf_counter()
        for t in range(CHECKPOINTS):
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY {table}ledger ({columns}) FROM STDIN") as copy:
                    for i in range(ROWS):
                        n = t * ROWS + i
                        copy.write_row((*extra, base + n * 1000, f"c{p}-{n % 20000:05d}", n,
                                        '{"x":"' + "y" * 120 + '"}'))  # fmt: skip
                marks = ", ".join(["%s"] * (len(extra) + 2))
                cur.executemany(
                    f"INSERT INTO {table}profiles ({pcols}) VALUES ({marks})"
                    " ON CONFLICT (customer) DO UPDATE SET state = excluded.state",
                    [(*extra, f"c{p}-{(t * PROFILES + j) % 20000:05d}", '{"plan":"pro"}')
                     for j in range(PROFILES)],
                )  # fmt: skip
        out.put(time.perf_counter() - started)


def measure(url: str, layout: str, writers: int) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ddl(layout, writers):
            conn.execute(statement)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, layout, p, go, out)) for p in range(writers)]
    for proc in procs:
        proc.start()
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - started
    rows = writers * CHECKPOINTS * ROWS
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        plan = [r[0].strip() for r in conn.execute(
            "EXPLAIN SELECT line FROM ledger ORDER BY ts, customer, seq")]  # fmt: skip
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY (SELECT line FROM ledger ORDER BY ts, customer, seq) TO STDOUT") as copy,
        ):
            for _ in copy:
                pass
        read = time.perf_counter() - started
    top = plan[0].split("  ")[0]
    return (f"| {layout} | {writers} | {rows / wall / 1000:,.0f}k | {read:.2f} s | {top} |"
            f" {os.getloadavg()[0]:.1f} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writers", default="1,2,4")
    args = parser.parse_args()
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="omni-xdg-")
    import pgserver
    import psycopg

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="omni-layout-")) / "data",
                                 cleanup_mode="delete")  # fmt: skip
    try:
        root = server.get_uri()
        print("| layout | writers | ledger rows/s | export read | export plan | load |")
        print("| --- | ---: | ---: | ---: | --- | ---: |")
        for writers in (int(w) for w in args.writers.split(",")):
            for layout in ("column", "schemas"):
                name = f"{layout}{writers}"
                with psycopg.connect(root, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C'")
                print(measure(root.replace("/postgres?", f"/{name}?"), layout, writers), flush=True)
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
