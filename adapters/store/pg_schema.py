"""The PostgreSQL schema of the store: `schema.py`'s tables, in PostgreSQL's dialect.

There is one schema of record, SQLite's (`schema.py`), and one set of write rules
(`sqlite.write_rule`: the table of each record type and how a conflict resolves). This
module derives PostgreSQL's from them, so a table or column added there is here too:

- `INTEGER PRIMARY KEY` (SQLite's rowid: the order written) becomes a BIGINT identity;
  every other INTEGER a BIGINT (SQLite's integers are 64-bit: `ts` is microseconds);
- every TEXT column is `TEXT COLLATE "C"`: PostgreSQL then compares and sorts text by
  its UTF-8 bytes, as SQLite's BINARY collation does, whatever locale the database was
  created with — so `ORDER BY ts, customer, seq` gives the ledger the same bytes in the
  same order on both stores (an en_US database would sort `cust-10` before `cust 1`).
  Declared on the column, the indexes inherit it and plain `ORDER BY` uses them;
- SQLite's JSON reads on text columns become PostgreSQL's (`postgres_json`):
  `x ->> '$.a.b'` is `x::json #>> '{a,b}'`, `x ->> 'k'` is `x::json ->> 'k'` (both
  `COLLATE "C"` again), `json_valid(x)` is `x IS JSON` (PostgreSQL 16) — the same text
  for the console's queries (`pg_console`) as for the indexes that serve them, so the
  planner matches them; an index on an expression gets the parentheses PostgreSQL
  wants around it;
- `WITHOUT ROWID` and PRAGMAs go.

Each store is one PostgreSQL schema (a namespace in the database): the run's main store
is `omniconsole` (or the URL's `schema=`), and partition k of a partitioned run is
`<main>_p<k>` beside it — the counterpart of SQLite's part files. Besides SQLite's
tables, each has a `fence` row: the epoch of the writer that owns it. Opening a writer
bumps it; every checkpoint commits only while the epoch is still its own, so a writer
that was replaced (a partition recreated on another node while the old one was cut off,
not dead) can never commit again. And a `progress` row: how far a running replay has
read, for the consoles (SQLite's stores keep it in a file beside them).
"""

from __future__ import annotations

import re

from omniconsole.adapters.store.base import StoreError
from omniconsole.adapters.store.schema import COUNTERS_BACKFILL as SQLITE_COUNTERS_BACKFILL
from omniconsole.adapters.store.schema import SCHEMA, SCHEMA_VERSION, outbox_migration
from omniconsole.adapters.store.sqlite import write_rule
from omniconsole.domain.records import RECORD_TYPES, StoreRecord

__all__ = [
    "COUNTERS_BACKFILL",
    "DDL",
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "TABLES",
    "UPSERT",
    "StoreFenced",
    "Upsert",
    "postgres_json",
    "postgres_outbox_migration",
]

#: NOTIFY channel: every committed checkpoint announces its store's schema name on it
NOTIFY_CHANNEL = "omniconsole_checkpoint"


class StoreFenced(StoreError):
    """Another writer opened this store since this one did: this one may not commit."""


FENCE = """
CREATE TABLE IF NOT EXISTS fence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
"""

#: how far a running replay has read (`progress.Progress` as JSON), written outside the
#: replay's transactions, as SQLite's store writes it to a file beside itself; a fact
#: lost with a crash is worth nothing, so the table is not logged
PROGRESS = """
CREATE UNLOGGED TABLE IF NOT EXISTS progress (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    fact  TEXT NOT NULL
);
"""


#: SQLite's JSON reads on a text column: a `$.` path, a top-level key, a validity test
_JSON_PATH = re.compile(r"\b(\w+)\s*->>\s*'\$\.([\w.]+)'")
_JSON_KEY = re.compile(r"\b(\w+)\s*->>\s*'(\w+)'")
_JSON_VALID = re.compile(r"\bjson_valid\((\w+)\)")
_INDEX = re.compile(r"(CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+\w+\s+ON\s+\w+)\s*\(")


def postgres_json(sql: str) -> str:
    """SQLite's JSON reads on text columns in PostgreSQL's dialect (see the module doc)."""

    def path(match: re.Match[str]) -> str:
        keys = ",".join(match.group(2).split("."))
        return f"""(({match.group(1)}::json #>> '{{{keys}}}') COLLATE "C")"""

    sql = _JSON_PATH.sub(path, sql)
    sql = _JSON_KEY.sub(r"""((\1::json ->> '\2') COLLATE "C")""", sql)
    return _JSON_VALID.sub(r"(\1 IS JSON)", sql)


def _index_expressions(sql: str) -> str:
    """Parentheses around each index element that is an expression, not a column."""
    out, at = [], 0
    for match in _INDEX.finditer(sql):
        start = match.end()
        depth, end = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        elements, depth, last = [], 0, start
        for k in range(start, end - 1):
            depth += {"(": 1, ")": -1}.get(sql[k], 0)
            if sql[k] == "," and depth == 0:
                elements.append(sql[last:k])
                last = k + 1
        elements.append(sql[last : end - 1])
        wrapped = [e if re.fullmatch(r"\s*\w+\s*", e) else f"({e.strip()})" for e in elements]
        out += [sql[at:start], ", ".join(w.strip() for w in wrapped), ")"]
        at = end
    return "".join(out) + sql[at:]


def postgres_ddl(sqlite_schema: str) -> str:
    """SQLite's DDL (`schema.py`) in PostgreSQL's dialect (see the module doc)."""
    sql = re.sub(r"--[^\n]*", "", sqlite_schema)  # comments may hold any word
    sql = re.sub(r"(?im)^\s*PRAGMA[^;]*;", "", sql)
    sql = re.sub(r"\)\s*WITHOUT ROWID", ")", sql)
    sql = re.sub(
        r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql
    )
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', sql)
    return _index_expressions(postgres_json(sql))


DDL = postgres_ddl(SCHEMA) + FENCE + PROGRESS

#: the counts of a store written before they were kept (`schema.COUNTERS_BACKFILL`): a
#: LIKE is a boolean in PostgreSQL, and the column it fills an integer
COUNTERS_BACKFILL = tuple(
    re.sub(r"(\w+ LIKE '[^']*'),", r"(\1)::int,", postgres_json(statement))
    for statement in SQLITE_COUNTERS_BACKFILL
)


def postgres_outbox_migration(columns: set[str]) -> list[str]:
    """SQLite's outbox migration (`schema.outbox_migration`: the columns a store lacks,
    then the delivery runner's partial indexes) in PostgreSQL's dialect: the same column
    types as `postgres_ddl` gives, and the payload read as JSON. A store made now has
    every column, so this is just the indexes."""
    return [
        postgres_ddl(s) if s.startswith("ALTER TABLE") else postgres_json(s)
        for s in outbox_migration(columns)
    ]


def _primary_keys(sqlite_schema: str) -> dict[str, tuple[str, ...]]:
    """table -> its primary key columns, read from the DDL."""
    keys: dict[str, tuple[str, ...]] = {}
    sql = re.sub(r"\)\s*WITHOUT ROWID", ")", re.sub(r"--[^\n]*", "", sqlite_schema))
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\);", sql, re.S):
        compound = re.search(r"PRIMARY KEY\s*\(([^)]*)\)", body)
        if compound:
            keys[name] = tuple(c.strip() for c in compound.group(1).split(","))
            continue
        single = re.search(r"^\s*(\w+)\s+\w+[^,\n]*PRIMARY KEY", body, re.M)
        if single:
            keys[name] = (single.group(1),)
    return keys


class Upsert:
    """How records of one type meet rows already there, as SQLite's rule says: the
    key columns, whether a later row updates (True) or is ignored (False), and the
    statement that moves staged rows into the table."""

    def __init__(self, record_type: type[StoreRecord], keys: dict[str, tuple[str, ...]]):
        table, verb, clause = write_rule(record_type)
        columns = ", ".join(record_type._fields)
        target = re.search(r"ON CONFLICT\s*\(([^)]*)\)", clause, re.I)
        if target:  # SQLite's own ON CONFLICT clause is PostgreSQL's too, but for one
            # thing: in `SET total = total + excluded.total` PostgreSQL wants the row
            # already there named (`counters.total`), not the bare column
            self.keys = tuple(c.strip() for c in target.group(1).split(","))
            self.update = "DO NOTHING" not in clause.upper()
            action = re.sub(r"SET (\w+) = \1\b", rf"SET \1 = {table}.\1", clause.strip())
        else:
            self.keys = keys[table]
            self.update = verb == "INSERT OR REPLACE"
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in record_type._fields
                             if c not in self.keys)  # fmt: skip
            conflict = f"ON CONFLICT ({', '.join(self.keys)})"
            action = f"{conflict} DO UPDATE SET {sets}" if self.update else f"{conflict} DO NOTHING"
        self.statement = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _stage_{table} {action}"
        )


def _is_plain(record_type: type[StoreRecord]) -> bool:
    _, verb, clause = write_rule(record_type)
    return verb == "INSERT" and not clause.strip()


#: record type -> table
TABLES: dict[type[StoreRecord], str] = {t: write_rule(t)[0] for t in RECORD_TYPES}
#: record types written with a conflict rule -> how (the others are plain COPYs)
UPSERT: dict[type[StoreRecord], Upsert] = {
    t: Upsert(t, _primary_keys(SCHEMA)) for t in RECORD_TYPES if not _is_plain(t)
}
