"""A PostgreSQL `--db` URL: how to connect, which schema, and how to show it safely.

    postgresql://user:password@host:5432/dbname?sslmode=require&schema=run1

Everything but `schema` goes to libpq unchanged. `schema` names the run's main store
(default `omniconsole`); partition k lives in `<schema>_p<k>`. A URL may carry a
password (in the authority or as `password=`): `masked` replaces it with `***`, and
every message this package writes about a store uses `masked`, never the URL itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from omniconsole.adapters.store.base import StoreError

if TYPE_CHECKING:
    import psycopg

# psycopg is imported where a connection is made: a console or replay on a SQLite file
# never loads it (~80 ms of every start).

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "omniconsole"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def is_postgres_url(location: str) -> bool:
    """Whether a `--db` value names PostgreSQL rather than a SQLite file."""
    return location.startswith(SCHEMES)


@dataclass(frozen=True, slots=True)
class PgLocation:
    """A database and a schema in it (picklable: partitions receive it)."""

    conninfo: str  # the URL without `schema=`: for libpq only, never shown
    schema: str

    @classmethod
    def parse(cls, url: str) -> PgLocation:
        """Split `schema=` off a `postgresql://` URL; a bad schema name is a StoreError."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
        if not _IDENT.fullmatch(schema):
            raise StoreError(
                f"schema={schema!r}: use lower-case letters, digits and _ (at most 41)"
            )
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        return cls(urlunsplit(parts._replace(query=rest)), schema)

    def at(self, schema: str) -> PgLocation:
        """The same database, another schema."""
        return PgLocation(self.conninfo, schema)

    @property
    def key(self) -> str:
        """Which database and schema, however the URL spells it (no user, no password):
        `host:port/dbname/schema`."""
        import psycopg

        try:
            info = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        except psycopg.Error:
            return self.masked
        return f"{info.get('host', '')}:{info.get('port', '5432')}/{info.get('dbname', '')}/{self.schema}"

    @property
    def masked(self) -> str:
        """The URL with any password replaced by `***` (for messages and the console)."""
        parts = urlsplit(self.conninfo)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        query = [
            (k, "***" if k == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        query.append(("schema", self.schema))
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/*")))

    def connect(
        self, *, autocommit: bool, search_path: str | None = None
    ) -> psycopg.Connection[Any]:
        """A connection with `search_path` set to `search_path` (default: this schema).

        Errors become StoreError with the masked URL: libpq's message never carries the
        password, and neither does ours.
        """
        # keep the URL's own `options=` (if any): the keyword replaces it, so repeat it
        own = dict(parse_qsl(urlsplit(self.conninfo).query)).get("options", "")
        options = f"{own} -c search_path={search_path or self.schema}".strip()
        import psycopg

        try:
            conn = psycopg.connect(self.conninfo, autocommit=autocommit, options=options)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.masked}: {self.scrub(exc)}") from None
        return conn

    def scrub(self, exc: BaseException) -> str:
        """The first line of an error, with the password (if any) blanked out."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = urlsplit(self.conninfo).password
        for key, value in parse_qsl(urlsplit(self.conninfo).query):
            if key == "password":
                password = value
        if password:
            text = text.replace(password, "***")
        return text
