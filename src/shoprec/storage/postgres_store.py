"""The PostgreSQL store (psycopg 3).

Bulk writes COPY the batch into a temporary staging table, then move it with one
`INSERT ... SELECT ... ON CONFLICT` statement: COPY is the fastest way into PostgreSQL, and the
conflict clause keeps ingest idempotent without a round trip per row.
"""

from __future__ import annotations

import re
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
    types = {"serial_pk": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "bigint": "BIGINT"}

    def __init__(self, conninfo: str, schema: str | None = None, url: str = "") -> None:
        super().__init__(url or conninfo)
        import psycopg

        if schema is not None and not _IDENT.match(schema):
            raise ValueError(f"bad PostgreSQL schema name {schema!r}: use letters, digits and _")
        self.schema = schema
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ValueError(f"cannot connect to PostgreSQL store {self.url!r}: {exc}") from exc
        if schema:
            self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self._conn.execute(f'SET search_path TO "{schema}"')
        self._create_schema()
        cols = ", ".join(f"{c} {t}" for c, t in zip(EVENT_DB_COLUMNS, _EVENT_TYPES, strict=True))
        # Temporary tables live in the session's own schema and empty themselves at commit.
        self._conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_events (seq BIGINT, {cols}) "
            "ON COMMIT DELETE ROWS"
        )
        for table in ("items", "users"):
            self._conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}) "
                "ON COMMIT DELETE ROWS"
            )

    def _transaction(self) -> AbstractContextManager[Any]:
        return self._conn.transaction()

    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        cols = ", ".join(EVENT_DB_COLUMNS)
        with self._conn.cursor() as cur:
            with cur.copy(f"COPY stage_events (seq, {cols}) FROM STDIN") as copy:
                for i, r in enumerate(rows):
                    copy.write_row((i, *r))
            cur.execute(
                f"INSERT INTO events ({cols}) SELECT {cols} FROM stage_events ORDER BY seq "
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


_EVENT_TYPES: tuple[str, ...] = (
    "TEXT",  # dedup_key
    "TEXT",  # user_id
    "TEXT",  # item_id
    "TEXT",  # event_type
    "DOUBLE PRECISION",  # ts
    "DOUBLE PRECISION",  # value
    "TEXT",  # session_id
    "TEXT",  # event_id
    "TEXT",  # context
)
