"""The store's floor: what SQLite alone costs a one-partition replay, against the
reference loop's whole run (issue "Per-core speed").

    .venv/bin/python benchmarks/store_floor.py --log LOG
    .venv/bin/python benchmarks/store_floor.py --customers 20000 --mix decision-heavy
    .venv/bin/python benchmarks/store_floor.py --log LOG --partition 0/2

It replays the log in this process (`--partitions 1`) with every statement the store
writer hands to SQLite recorded (aiosqlite's `execute`, `executemany` and
`executescript` are wrapped for that: instrumentation of this benchmark, which the
engine itself does not carry). Then it runs those statements again, in order, through
plain `sqlite3` on a fresh file with nothing else in the process: SQLite's own work for
that replay, without the engine's Python around it. It checks that this second store
holds as many rows in every table as the engine's (else it stops with status 1), and
prints SQLite's CPU seconds by table beside the reference loop's for the whole replay
(`reference_loop.py`, in a fresh process, as `engine_vs_reference.py` runs it).

The last line is a bound: the reference's CPU time over SQLite's. A one-partition
replay that writes this store on one core cannot beat the reference by more than that,
even if every line of the engine's Python cost nothing.

`--partition K/N` keeps the log's lines of partition K's customers alone
(`crc32(customer) % N`, as the engine splits them) and measures those: what one of N
partitions writes, replayed on its own clock, and the reference on the same lines.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiosqlite
import orjson
from engine_vs_reference import run_reference_once
from log_args import add_log_args, log_of

from omniconsole.engine.partitioned import partition_of
from omniconsole.engine.replay import ReplayOptions, run_replay

#: how a recorded statement was handed to SQLite
EXECUTE, MANY, SCRIPT = "execute", "executemany", "executescript"
_WRITE = re.compile(r"^\s*(INSERT(?:\s+OR\s+\w+)?)\s+INTO\s+(\w+)", re.I)
_HEAD = re.compile(r"^\s*(\w+)")


def recording(out: IO[bytes]) -> Callable[[], None]:
    """Wrap aiosqlite's statement calls to pickle each (how, sql, parameters) to `out`
    as it is handed over (the order SQLite runs them in); returns what undoes it."""
    connection = aiosqlite.Connection
    execute, many, script = connection.execute, connection.executemany, connection.executescript

    def recorded_execute(self: Any, sql: str, parameters: Any = None) -> Any:
        pickle.dump((EXECUTE, sql, parameters), out, protocol=pickle.HIGHEST_PROTOCOL)
        return execute(self, sql, parameters)

    def recorded_many(self: Any, sql: str, parameters: Iterable[Any]) -> Any:
        rows = list(parameters)
        pickle.dump((MANY, sql, rows), out, protocol=pickle.HIGHEST_PROTOCOL)
        return many(self, sql, rows)

    def recorded_script(self: Any, sql: str) -> Any:
        pickle.dump((SCRIPT, sql, None), out, protocol=pickle.HIGHEST_PROTOCOL)
        return script(self, sql)

    connection.execute = recorded_execute  # type: ignore[method-assign,assignment]
    connection.executemany = recorded_many  # type: ignore[method-assign,assignment]
    connection.executescript = recorded_script  # type: ignore[method-assign,assignment]

    def undo() -> None:
        connection.execute = execute  # type: ignore[method-assign]
        connection.executemany = many  # type: ignore[method-assign]
        connection.executescript = script  # type: ignore[method-assign]

    return undo


def label(sql: str) -> str:
    """What a statement writes, for the table: `ledger`, `journey_instances (INSERT OR
    REPLACE)`, or its first word (`COMMIT`, `SELECT`, `PRAGMA`)."""
    write = _WRITE.match(sql)
    if write is not None:
        verb = " ".join(write.group(1).upper().split())
        return write.group(2) if verb == "INSERT" else f"{write.group(2)} ({verb})"
    head = _HEAD.match(sql)
    return head.group(1).upper() if head else "other"


@dataclass
class Floor:
    """SQLite's work, replayed: statements, CPU and wall seconds, CPU by label."""

    statements: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    by_label: dict[str, float] = field(default_factory=dict)


def replay_statements(recorded: Path, db: Path) -> Floor:
    """Run the recorded statements through plain sqlite3 on a fresh `db`, timing each."""
    floor = Floor()
    conn = sqlite3.connect(db, isolation_level=None)  # as the writer's aiosqlite connection
    started = time.perf_counter()
    try:
        with recorded.open("rb") as stream:
            while True:
                try:
                    how, sql, parameters = pickle.load(stream)
                except EOFError:
                    break
                cpu = time.process_time()
                if how == SCRIPT:
                    conn.executescript(sql)
                elif how == MANY:
                    conn.executemany(sql, parameters)
                else:
                    conn.execute(sql, parameters or ()).fetchall()  # reads run to the end
                spent = time.process_time() - cpu
                floor.statements += 1
                floor.cpu += spent
                name = label(sql)
                floor.by_label[name] = floor.by_label.get(name, 0.0) + spent
    finally:
        conn.close()
    floor.wall = time.perf_counter() - started
    return floor


def row_counts(db: Path) -> dict[str, int]:
    """Rows of every table of a store."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
    finally:
        conn.close()


def report(events: int, floor: Floor, reference_cpu: float, reference_wall: float) -> str:
    """The printed summary."""
    lines = [
        f"log: {events:,} events",
        f"SQLite alone (the store writer's {floor.statements:,} statements through plain"
        f" sqlite3): {floor.cpu:.2f} CPU s, {floor.wall:.2f} s wall",
    ]
    for name, seconds in sorted(floor.by_label.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.005:
            lines.append(f"  {name}: {seconds:.2f} s ({seconds / floor.cpu:.0%})")
    lines.append(
        f"reference loop, the whole replay: {reference_cpu:.2f} CPU s, {reference_wall:.2f} s wall"
    )
    lines.append(
        f"bound at 1 partition: {reference_cpu / floor.cpu:.2f}x the reference (its CPU over"
        " SQLite's), were the engine's Python free"
    )
    return "\n".join(lines)


def keep_partition(log: Path, out: Path, part: int, parts: int) -> None:
    """Write to `out` the lines of `log` whose customer is in partition `part` of
    `parts`; lines without one (not JSON, no `userId`) go with partition 0, as rejects."""
    with log.open("rb") as lines, out.open("wb") as kept:
        for raw in lines:
            try:
                customer = orjson.loads(raw).get("userId")
            except (orjson.JSONDecodeError, AttributeError):
                customer = None
            owner = partition_of(customer, parts) if isinstance(customer, str) else 0
            if owner == part:
                kept.write(raw)


def partition_arg(text: str) -> tuple[int, int]:
    """`K/N` as (K, N), with 0 <= K < N."""
    try:
        part, parts = (int(n) for n in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N, got {text!r}") from None
    if not 0 <= part < parts:
        raise argparse.ArgumentTypeError(f"partition {part} is not one of 0..{parts - 1}")
    return part, parts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_log_args(parser)
    parser.add_argument(
        "--partition", type=partition_arg, metavar="K/N",
        help="only the customers of partition K of N (crc32, as the engine splits them)",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: temp)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work: Path) -> int:
    log = log_of(args, work)
    if args.partition is not None:
        part, parts = args.partition
        kept = work / f"log.part{part}of{parts}.jsonl"
        keep_partition(log, kept, part, parts)
        log = kept
        print(f"partition {part} of {parts}: the log's lines of its customers alone")
    engine_db, recorded = work / "engine.db", work / "statements.pickle"
    options = ReplayOptions(
        log=log, db=engine_db, ledger=work / "ledger.jsonl", report=work / "report.json",
        partitions=1,
    )  # fmt: skip
    with recorded.open("wb") as out:
        undo = recording(out)
        try:
            run_replay(options)
        finally:
            undo()
    floor_db = work / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{floor_db}{suffix}").unlink(missing_ok=True)
    floor = replay_statements(recorded, floor_db)
    recorded.unlink()
    engine_rows, floor_rows = row_counts(engine_db), row_counts(floor_db)
    if floor_rows != engine_rows:
        differ = sorted(
            t for t in engine_rows.keys() | floor_rows.keys()
            if engine_rows.get(t) != floor_rows.get(t)
        )  # fmt: skip
        print(f"store_floor: the replayed store differs from the engine's in {differ}")
        return 1
    reference = run_reference_once(log, work, spec_keywords=True)
    print(f"rows: as the engine's store, in all {len(engine_rows)} tables")
    print(report(reference.events, floor, reference.cpu_seconds, reference.seconds))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="store-floor-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
