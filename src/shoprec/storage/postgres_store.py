"""The PostgreSQL store (psycopg 3).

Bulk writes COPY the batch into a temporary staging table, then move it with one
`INSERT ... SELECT ... ON CONFLICT` statement: COPY is the fastest way into PostgreSQL, and the
conflict clause keeps ingest idempotent without a round trip per row.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from shoprec.storage.sql_store import EVENT_DB_COLUMNS, SQLStore

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _no_nul(v: Any) -> Any:
    # PostgreSQL text cannot hold NUL; everything else passes through unchanged.
    return v.replace("\x00", "") if isinstance(v, str) and "\x00" in v else v


class PostgresStore(SQLStore):
    """A `Store` in PostgreSQL, optionally inside its own schema.

    Parameters
    ----------
    conninfo : str
        libpq connection string or URI.
    schema : str, optional
        Schema to create (if missing) and use; letters, digits and `_` only.
    url : str
        The URL it was opened with (for messages).
    """

    placeholder = "%s"
    types = {
        # Arrival order is assigned by the client (`_next_ids`): a sequence's nextval() per
        # row, with its own index, cost about a fifth of the server's insert time.
        "arrival": "BIGINT NOT NULL",
        "dedup_key": 'TEXT COLLATE "C" PRIMARY KEY',
        # Byte-wise comparison: faster index maintenance than a locale's collation, and the
        # same orders as SQLite.
        "id_text": 'TEXT COLLATE "C"',
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
    }

    def __init__(self, conninfo: str, schema: str | None = None, url: str = "") -> None:
        super().__init__(url or conninfo)
        if schema is not None and not _IDENT.match(schema):
            raise ValueError(f"bad PostgreSQL schema name {schema!r}: use letters, digits and _")
        self.conninfo = conninfo
        self.schema = schema
        self._last_id = 0
        self._conn = self._connect()
        self._create_schema()
        self._create_staging()

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ValueError(f"cannot connect to PostgreSQL store {self.url!r}: {exc}") from exc
        if self.schema:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def _create_staging(self) -> None:
        # Temporary tables live in the session's own schema and empty themselves at commit.
        for table in ("events", "items", "users"):
            self._conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}) "
                "ON COMMIT DELETE ROWS"
            )

    def _heal(self) -> None:
        if self._conn.broken or self._conn.closed:
            try:
                self._conn.close()
            finally:
                self._conn = self._connect()
                self._create_staging()

    def _transaction(self) -> AbstractContextManager[Any]:
        return self._conn.transaction()

    def _next_ids(self, n: int) -> int:
        """First of `n` arrival ids: nanoseconds since the epoch, increasing in this process.

        Concurrent writers may interleave; that only changes the order of events that share
        a timestamp, which is all the id is used for.
        """
        first = max(time.time_ns(), self._last_id + 1)
        self._last_id = first + n - 1
        return first

    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        cols = ", ".join(EVENT_DB_COLUMNS)
        first = self._next_ids(len(rows))
        with self._conn.cursor() as cur:
            with cur.copy(f"COPY stage_events (id, {cols}) FROM STDIN") as copy:
                for i, r in enumerate(rows):
                    copy.write_row((first + i, *r))
            cur.execute(
                f"INSERT INTO events (id, {cols}) SELECT id, {cols} FROM stage_events "
                "ON CONFLICT (dedup_key) DO NOTHING"
            )
            return int(cur.rowcount)

    def _upsert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        key, rest = columns[0], columns[1:]
        names = ", ".join(columns)
        sets = ", ".join(f"{c} = excluded.{c}" for c in rest)
        with self._conn.cursor() as cur:
            with cur.copy(f"COPY stage_{table} ({names}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(tuple(_no_nul(v) for v in r))
            cur.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table} "
                f"ON CONFLICT ({key}) DO UPDATE SET {sets}"
            )

    def drop_schema(self) -> None:
        """Drop this store's schema and everything in it, then close (test clean-up).

        Refuses when the store was opened without `?schema=`, so it never drops `public`.
        """
        if not self.schema:
            raise ValueError("drop_schema() needs a store opened with ?schema=")
        with self._lock:
            self._require_open()
            self._conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.close()
