"""The console's connection to a PostgreSQL store: the subset of `sqlite3` it uses.

The console's queries (`console_queries.py`, `console_customers.py`) are written once,
in the SQL both stores speak, and run over a DB-API connection
(`console_connection.ConsoleConnection`). For SQLite that is `sqlite3` itself; for
PostgreSQL it is `PgConsoleConnection`, which takes the same calls and turns the few
SQLite-isms the console's SQL keeps into PostgreSQL's:

- `?` placeholders become `%s` (and a literal `%` is doubled);
- a part is named as SQLite attaches it — `main.`, `p0.`, `p1.` … — and becomes the
  part's schema; unqualified tables are the TEMP views over every part
  (`pg_reader.attach_part_views`), as SQLite's TEMP views are;
- JSON reads on text columns (`state ->> '$.traits.name'`, `json_valid(state)`) are
  PostgreSQL's, spelled as the store's indexes spell them (`pg_schema.postgres_json`),
  so the same indexes serve them;
- `x = ? COLLATE NOCASE` becomes `lower(x) = lower(?)`, `LIKE` (ASCII-case-insensitive
  in SQLite) becomes `ILIKE`, `instr` is `strpos`;
- SQLite's O(1) counts by the largest row id (ids are dense there; a PostgreSQL
  identity skips the numbers of a rolled-back transaction): decisions are the sum of
  the engine's `counters`, profiles a `count(*)`;
- `sqlite_master` lists the tables and views the console may read; PRAGMAs are no-ops;
- `BEGIN` opens a read-only REPEATABLE READ transaction: like SQLite's read
  transaction, every query inside it sees the same committed checkpoint.

`data_version()` stands for SQLite's `PRAGMA data_version`: the database's snapshot
(`pg_current_snapshot()`), which changes whenever a write transaction starts or ends —
so a poll that finds it unchanged reads nothing (another database of the same server
writing can only cause a needless read).

Rows answer by index and by column name, as `sqlite3.Row`; a whole-number `numeric`
(PostgreSQL's SUM of integers) comes back as an int. Errors are raised as
`sqlite3.OperationalError`, so the console's handling of a store that is missing,
being created or busy is the same for both.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg

from omniconsole.adapters.store.pg_location import PgLocation
from omniconsole.adapters.store.pg_reader import attach_part_views
from omniconsole.adapters.store.pg_schema import postgres_json

_PART = re.compile(r"\b(main|p\d+)\.(?=[a-z_])")
_DENSE_LEDGER = re.compile(r"COALESCE\(MAX\(id\), 0\) FROM (\w+)\.ledger\b")
_DENSE_PROFILES = re.compile(r"COALESCE\(MAX\(rowid\), 0\) FROM (\w+)\.profiles\b")
_INSTR = re.compile(r"\binstr\(")
_NOCASE = re.compile(r"([\w.]+)\s*=\s*\?\s+COLLATE\s+NOCASE", re.I)
_LIKE = re.compile(r"\bLIKE\b")
_TABLES = (
    "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'v')"
    " AND (c.relnamespace = to_regnamespace(current_schema())"
    " OR c.relnamespace = pg_my_temp_schema())"
)


class ConsoleRow(Sequence[Any]):
    """One row: by index (`row[0]`) or by column name (`row["key"]`), as `sqlite3.Row`."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple[Any, ...], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"ConsoleRow{self._values!r}"


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class ConsoleCursor:
    """The rows of one statement."""

    def __init__(self, cursor: psycopg.Cursor[Any] | None) -> None:
        self._cursor = cursor
        names = [d.name for d in cursor.description] if cursor and cursor.description else []
        self._index = {name: i for i, name in enumerate(names)}

    def _row(self, raw: Sequence[Any] | None) -> ConsoleRow | None:
        if raw is None:
            return None
        return ConsoleRow(tuple(_value(v) for v in raw), self._index)

    def fetchone(self) -> ConsoleRow | None:
        if self._cursor is None or self._cursor.description is None:
            return None
        return self._row(self._cursor.fetchone())

    def fetchall(self) -> list[ConsoleRow]:
        if self._cursor is None or self._cursor.description is None:
            return []
        return [
            ConsoleRow(tuple(_value(v) for v in r), self._index) for r in self._cursor.fetchall()
        ]

    def fetchmany(self, size: int = 1000) -> list[ConsoleRow]:
        if self._cursor is None or self._cursor.description is None:
            return []
        return [ConsoleRow(tuple(_value(v) for v in r), self._index)
                for r in self._cursor.fetchmany(size)]  # fmt: skip

    def __iter__(self) -> Iterator[ConsoleRow]:
        return iter(self.fetchall())


def translate(sql: str, main_schema: str) -> str:
    """The console's SQL (SQLite's dialect, as written) in PostgreSQL's."""

    def part(match: re.Match[str]) -> str:
        name = match.group(1)
        schema = main_schema if name == "main" else f"{main_schema}_{name}"
        return f'"{schema}".'

    sql = _DENSE_LEDGER.sub(r"COALESCE(SUM(total), 0) FROM \1.counters", sql)
    sql = _DENSE_PROFILES.sub(r"count(*) FROM \1.profiles", sql)
    sql = _PART.sub(part, sql)
    sql = _NOCASE.sub(lambda m: f"lower({m.group(1)}) = lower(?)", sql)
    sql = _LIKE.sub("ILIKE", sql)
    sql = _INSTR.sub("strpos(", postgres_json(sql))
    return sql.replace("%", "%%").replace("?", "%s")


class PgConsoleConnection:
    """A read-only connection to a PostgreSQL store that takes `sqlite3` calls."""

    def __init__(self, location: PgLocation) -> None:
        self.location = location
        self._conn = location.connect(autocommit=True)
        try:
            #: the part names, as SQLite would attach them (`p0`, `p1`, …; none: one store)
            self.parts = [f"p{k}" for k in range(len(attach_part_views(self._conn)))]
        except psycopg.Error as exc:
            self._conn.close()
            raise sqlite3.OperationalError(location.scrub(exc)) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> ConsoleCursor:
        """Run one statement of the console's SQL (see the module doc)."""
        text = sql.strip()
        head = text.split(None, 1)[0].upper() if text else ""
        if head == "PRAGMA":
            return ConsoleCursor(None)
        if head == "BEGIN":
            text = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        elif "sqlite_master" in text:
            text = _TABLES
        else:
            text = translate(text, self.location.schema)
        cursor = self._conn.cursor()
        try:
            cursor.execute(text, tuple(params) if params else None)
        except psycopg.Error as exc:
            raise sqlite3.OperationalError(self.location.scrub(exc)) from None
        return ConsoleCursor(cursor)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction (`BEGIN`) is open, as `sqlite3.Connection` says."""
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def data_version(self) -> str:
        """Changes whenever a write transaction of the database starts or ends (see
        the module doc); raises `sqlite3.OperationalError` when it cannot be asked."""
        try:
            row = self._conn.execute("SELECT pg_current_snapshot()::text").fetchone()
        except psycopg.Error as exc:
            raise sqlite3.OperationalError(self.location.scrub(exc)) from None
        return str(row[0]) if row else ""

    def schema_identity(self) -> int | None:
        """The main schema's object id: another value means the store was made anew."""
        try:
            row = self._conn.execute(
                "SELECT oid::bigint FROM pg_namespace WHERE nspname = %s", (self.location.schema,)
            ).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()


def schema_identity(location: PgLocation) -> int | None:
    """The main schema's object id, on a short connection (None: no store, or no server)."""
    try:
        with psycopg.connect(location.conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT oid::bigint FROM pg_namespace WHERE nspname = %s", (location.schema,)
            ).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None
