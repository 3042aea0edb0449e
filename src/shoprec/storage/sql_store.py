"""SQL logic shared by the SQLite and PostgreSQL stores (plain DB-API, no ORM).

Both backends understand the same SQL here (`INSERT ... ON CONFLICT`, `excluded.`), written
with `?` placeholders; the PostgreSQL backend rewrites them to `%s`. Backends supply the
connection, the column types, the transaction and the bulk-insert path (executemany for
SQLite, COPY into a staging table for PostgreSQL).

Why no SQLAlchemy here: the bulk paths dominate ingest time and go straight to the driver
(sqlite3's executemany, psycopg's COPY); the remaining statements are a dozen plain SQL
strings that both engines accept as they are.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import orjson
import pandas as pd

from shoprec.storage.base import (
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    AddResult,
    Store,
    summarise,
)
from shoprec.types import Event, Item, User

SCHEMA_VERSION = 1

# Column order of rows handed to `_insert_events`.
EVENT_DB_COLUMNS: tuple[str, ...] = (
    "dedup_key",
    "user_id",
    "item_id",
    "event_type",
    "ts",
    "value",
    "session_id",
    "event_id",
    "context",
)
ITEM_DB_COLUMNS: tuple[str, ...] = ITEM_COLUMNS
USER_DB_COLUMNS: tuple[str, ...] = USER_COLUMNS

DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS shoprec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # `id` is the arrival order (ties of equal timestamps keep it); `dedup_key` makes ingest
    # idempotent. Ids compare byte-wise in both backends, so orders agree between them.
    """CREATE TABLE IF NOT EXISTS events (
        id {arrival},
        dedup_key {dedup_key},
        user_id {id_text} NOT NULL,
        item_id {id_text},
        event_type TEXT NOT NULL,
        ts {real} NOT NULL,
        value {real},
        session_id TEXT,
        event_id TEXT,
        context TEXT
    )""",
    # One secondary index only: each index costs a random B-tree insert per event, and bulk
    # ingest speed matters more than the rare time-range scans (retention, `since`).
    "CREATE INDEX IF NOT EXISTS events_user_ts ON events (user_id, ts)",
    """CREATE TABLE IF NOT EXISTS items (
        item_id {id_text} PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        category TEXT NOT NULL,
        brand TEXT NOT NULL,
        price {real},
        currency TEXT NOT NULL,
        image TEXT NOT NULL,
        stock {bigint},
        attributes TEXT NOT NULL,
        created_at {real},
        active {bigint} NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS users (user_id {id_text} PRIMARY KEY, attributes TEXT NOT NULL)",
)

_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit


def _json(obj: Any) -> str | None:
    return None if obj is None else orjson.dumps(obj, default=str).decode()


def _unjson(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def event_row(e: Event, key: str) -> tuple[Any, ...]:
    """One `events` row in `EVENT_DB_COLUMNS` order."""
    return (
        key,
        e.user_id,
        e.item_id,
        e.event_type,
        e.timestamp,
        e.value,
        e.session_id,
        e.event_id,
        None if e.context is None else _json(e.context),
    )


def item_row(it: Item) -> tuple[Any, ...]:
    return (
        it.item_id,
        it.title,
        it.description,
        it.category,
        it.brand,
        it.price,
        it.currency,
        it.image,
        it.stock,
        _json(it.attributes or {}),
        it.created_at,
        1 if it.active else 0,
    )


def _item_from_row(r: Sequence[Any]) -> Item:
    return Item(
        item_id=r[0],
        title=r[1],
        description=r[2],
        category=r[3],
        brand=r[4],
        price=r[5],
        currency=r[6],
        image=r[7],
        stock=None if r[8] is None else int(r[8]),
        attributes=_unjson(r[9]) or {},
        created_at=r[10],
        active=bool(r[11]),
    )


def _event_from_row(r: Sequence[Any]) -> Event:
    return Event(r[0], r[1], r[2], float(r[3]), r[4], r[5], _unjson(r[7]), r[6])


def unique_last(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows keyed by their first column, keeping the last of each key (upsert order)."""
    return list({r[0]: r for r in rows}.values())


class SQLStore(Store):
    """A `Store` over one DB-API connection guarded by a lock."""

    placeholder = "?"
    types: dict[str, str] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: Any = None

    # --- backend hooks ------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A context manager that commits on success and rolls back on error."""

    @abstractmethod
    def _insert_events(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert unique-keyed rows, skipping stored keys; returns rows inserted.

        Called inside `_transaction()`.
        """

    @abstractmethod
    def _upsert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert or overwrite rows keyed by `columns[0]` (keys unique within `rows`).

        Called inside `_transaction()`.
        """

    # --- helpers ------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(self._sql(sql), params).fetchall())

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._conn.execute(self._sql(sql), params)
        return int(cur.rowcount)

    def _require_open(self) -> None:
        if self._conn is None:
            raise ValueError(f"store {self.url!r} is closed")

    def _heal(self) -> None:
        """Replace a connection the server dropped (backends that can lose one override)."""

    @contextmanager
    def _session(self) -> Iterator[None]:
        """Exclusive use of the connection, reopened first if the server had dropped it.

        A call that meets a dropped connection fails; the next one reconnects. Retrying the
        failed write is safe: event inserts and upserts are idempotent.
        """
        with self._lock:
            self._require_open()
            self._heal()
            yield

    def _create_schema(self) -> None:
        with self._transaction():
            for stmt in DDL:
                self._exec(stmt.format(**self.types))
            rows = self._query("SELECT value FROM shoprec_meta WHERE key = 'schema_version'")
            if not rows:
                self._exec(
                    "INSERT INTO shoprec_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(rows[0][0]) != SCHEMA_VERSION:
                raise ValueError(
                    f"store {self.url!r} has schema version {rows[0][0]}, "
                    f"this shoprec reads version {SCHEMA_VERSION}"
                )

    # --- writes -------------------------------------------------------------------------
    def add_events(self, events: Sequence[Event]) -> AddResult:
        unique: dict[str, tuple[Any, ...]] = {}
        for e in events:
            k = e.dedup_key()
            if k not in unique:  # the first of repeated events is the one kept
                unique[k] = event_row(e, k)
        if not unique:
            return AddResult(0, len(events))
        rows = list(unique.values())
        with self._session():
            with self._transaction():
                inserted = self._insert_events(rows)
        return AddResult(inserted, len(events) - inserted)

    def upsert_items(self, items: Sequence[Item]) -> int:
        rows = unique_last(item_row(it) for it in items)
        if rows:
            with self._session():
                with self._transaction():
                    self._upsert("items", ITEM_DB_COLUMNS, rows)
        return len(rows)

    def upsert_users(self, users: Sequence[User]) -> int:
        rows = unique_last((u.user_id, _json(u.attributes or {})) for u in users)
        if rows:
            with self._session():
                with self._transaction():
                    self._upsert("users", USER_DB_COLUMNS, rows)
        return len(rows)

    def delete_user(self, user_id: str) -> dict[str, int]:
        with self._session():
            with self._transaction():
                n_events = self._exec("DELETE FROM events WHERE user_id = ?", (user_id,))
                n_users = self._exec("DELETE FROM users WHERE user_id = ?", (user_id,))
        return {"events": n_events, "users": n_users}

    def purge_events_before(self, ts: float) -> int:
        with self._session():
            with self._transaction():
                return self._exec("DELETE FROM events WHERE ts < ?", (float(ts),))

    # --- reads --------------------------------------------------------------------------
    def events_frame(self, since: float | None = None) -> pd.DataFrame:
        sql = (
            "SELECT user_id, item_id, event_type, ts, value, session_id, event_id, context "
            "FROM events"
        )
        params: tuple[Any, ...] = ()
        if since is not None:
            sql += " WHERE ts >= ?"
            params = (float(since),)
        with self._session():
            rows = self._query(sql + " ORDER BY ts, id", params)
        n = len(EVENT_COLUMNS)
        cols = list(zip(*rows, strict=True)) if rows else [()] * n
        data: dict[str, Any] = {}
        for name, col in zip(EVENT_COLUMNS, cols, strict=True):
            if name in ("timestamp", "value"):
                data[name] = np.array([np.nan if x is None else x for x in col], np.float64)
            elif name == "context":
                data[name] = pd.Series([_unjson(c) for c in col], dtype=object)
            else:
                data[name] = pd.Series(list(col), dtype=object)
        return pd.DataFrame(data, columns=list(EVENT_COLUMNS))

    def items_frame(self) -> pd.DataFrame:
        with self._session():
            rows = self._query(f"SELECT {', '.join(ITEM_DB_COLUMNS)} FROM items ORDER BY item_id")
        items = [_item_from_row(r) for r in rows]
        frame = pd.DataFrame(
            {c: pd.Series([getattr(it, c) for it in items], dtype=object) for c in ITEM_COLUMNS},
            columns=list(ITEM_COLUMNS),
        )
        for c in ("price", "stock", "created_at"):
            frame[c] = pd.to_numeric(frame[c].astype("float64"))
        frame["active"] = frame["active"].astype(bool)
        return frame

    def users_frame(self) -> pd.DataFrame:
        with self._session():
            rows = self._query("SELECT user_id, attributes FROM users ORDER BY user_id")
        return pd.DataFrame(
            {
                "user_id": pd.Series([r[0] for r in rows], dtype=object),
                "attributes": pd.Series([_unjson(r[1]) or {} for r in rows], dtype=object),
            },
            columns=list(USER_COLUMNS),
        )

    def get_items(self, ids: Iterable[str]) -> dict[str, Item]:
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Item] = {}
        with self._session():
            for chunk in _chunks(wanted, _IN_CHUNK):
                marks = ", ".join("?" * len(chunk))
                rows = self._query(
                    f"SELECT {', '.join(ITEM_DB_COLUMNS)} FROM items WHERE item_id IN ({marks})",
                    chunk,
                )
                for r in rows:
                    out[r[0]] = _item_from_row(r)
        return out

    def user_events(self, user_id: str, limit: int = 50) -> list[Event]:
        if limit <= 0:
            return []
        with self._session():
            rows = self._query(
                "SELECT user_id, item_id, event_type, ts, value, session_id, event_id, context "
                "FROM events WHERE user_id = ? ORDER BY ts DESC, id DESC LIMIT ?",
                (user_id, int(limit)),
            )
        return [_event_from_row(r) for r in reversed(rows)]

    def user_item_history(self, user_id: str, limit: int = 50) -> list[tuple[str, str, float]]:
        if limit <= 0:
            return []
        with self._session():
            rows = self._query(
                "SELECT item_id, event_type, ts FROM events WHERE user_id = ? "
                "ORDER BY ts DESC, id DESC LIMIT ?",
                (user_id, int(limit)),
            )
        return [(r[0], r[1], float(r[2])) for r in reversed(rows) if r[0]]

    def count_events(self) -> int:
        with self._session():
            return int(self._query("SELECT COUNT(*) FROM events")[0][0])

    def stats(self) -> dict[str, Any]:
        with self._session():
            by_type = self._query("SELECT event_type, COUNT(*) FROM events GROUP BY event_type")
            item_counts = self._query(
                "SELECT COUNT(*) FROM events WHERE item_id IS NOT NULL GROUP BY item_id"
            )
            user_counts = self._query("SELECT COUNT(*) FROM events GROUP BY user_id")
            pairs = self._query(
                "SELECT COUNT(*) FROM (SELECT DISTINCT user_id, item_id FROM events "
                "WHERE item_id IS NOT NULL) AS p"
            )[0][0]
            n_items = self._query("SELECT COUNT(*) FROM items")[0][0]
            n_users = self._query("SELECT COUNT(*) FROM users")[0][0]
            first, last = self._query("SELECT MIN(ts), MAX(ts) FROM events")[0]
        return summarise(
            events_by_type={t: int(n) for t, n in by_type},
            item_counts=np.array([r[0] for r in item_counts], dtype=np.int64),
            user_counts=np.array([r[0] for r in user_counts], dtype=np.int64),
            n_pairs=int(pairs),
            catalog_items=int(n_items),
            user_records=int(n_users),
            first_ts=None if first is None else float(first),
            last_ts=None if last is None else float(last),
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _chunks(seq: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
