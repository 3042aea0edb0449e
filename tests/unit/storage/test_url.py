"""Opening stores and online state by URL."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from shoprec.storage import open_online_state, open_store
from shoprec.storage.base import gini, summarise
from shoprec.storage.online_state import MemoryOnlineState
from shoprec.storage.sqlite_store import SQLiteStore
from shoprec.storage.url import scheme_of, split_postgres_url, sqlite_path
from shoprec.types import Event


def test_scheme_and_paths() -> None:
    assert scheme_of("postgresql+psycopg://h/db") == "postgresql"
    assert scheme_of("SQLite:///x.db") == "sqlite" and scheme_of("x.db") == ""
    assert sqlite_path("sqlite:///data/x.db") == "data/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert sqlite_path("sqlite://") == ":memory:" == sqlite_path("sqlite:///:memory:")
    with pytest.raises(ValueError, match="sqlite:///path"):
        sqlite_path("sqlite://host/x.db")


def test_postgres_url_keeps_libpq_parameters_and_takes_schema() -> None:
    conninfo, schema = split_postgres_url(
        "postgresql+psycopg://me@127.0.0.1:5432/test?schema=t1&sslmode=disable"
    )
    assert conninfo == "postgresql://me@127.0.0.1:5432/test?sslmode=disable"
    assert schema == "t1"
    assert split_postgres_url("postgres://h/db")[1] is None


@pytest.mark.parametrize("url", ["mysql://h/db", "mongodb://x", "shop.db", "redis://h/0"])
def test_unknown_store_scheme_is_named(url: str) -> None:
    with pytest.raises(ValueError, match="unknown store URL scheme") as info:
        open_store(url)
    assert repr(scheme_of(url) or "(none)") in str(info.value)


def test_unknown_online_scheme_and_parameters() -> None:
    with pytest.raises(ValueError, match="'memcached'"):
        open_online_state("memcached://h")
    with pytest.raises(ValueError, match="unknown memory:// parameter"):
        open_online_state("memory://?size=3")
    with pytest.raises(ValueError, match="unknown redis:// parameter"):
        open_online_state("redis://127.0.0.1:6379/0?bogus=1")
    state = open_online_state("memory://?max_events=7")
    assert isinstance(state, MemoryOnlineState) and state.max_events == 7


def test_bad_postgres_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="bad PostgreSQL schema name"):
        open_store('postgresql://127.0.0.1:5432/test?schema=x";drop')


def test_sqlite_file_is_created_in_wal_mode(tmp_path) -> None:
    path = tmp_path / "sub" / "s.db"
    with open_store(f"sqlite:///{path}") as s:
        assert isinstance(s, SQLiteStore)
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert path.exists()


def test_sqlite_refuses_another_schema_version(tmp_path) -> None:
    path = tmp_path / "s.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE shoprec_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match="schema version 99"):
        open_store(f"sqlite:///{path}")


def test_memory_state_bounds_the_number_of_users() -> None:
    s = MemoryOnlineState(max_events=2, max_users=2)
    for u in ("a", "b", "c"):
        s.append(u, [Event(u, "i", "view", 1.0)])
    s.append("b", [Event("b", "j", "view", 2.0)])  # b is now the most recent
    s.append("d", [Event("d", "i", "view", 1.0)])
    assert [u for u in "abcd" if s.recent(u, 5)] == ["b", "d"]
    with pytest.raises(ValueError):
        MemoryOnlineState(max_events=0)


def test_gini_known_values() -> None:
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)  # (n-1)/n for one holder
    assert gini(np.array([1, 1, 1, 1, 6])) == pytest.approx(0.4)
    assert gini(np.array([])) == 0.0


def test_summarise_long_tail_figures() -> None:
    s = summarise(
        events_by_type={"view": 90, "purchase": 10},
        item_counts=np.array([50, 20, 10, 5, 5, 4, 3, 1, 1, 1]),
        user_counts=np.array([60, 40]),
        n_pairs=12,
        catalog_items=12,
        user_records=0,
        first_ts=1.0,
        last_ts=2.0,
    )
    assert s["top20_items_event_share"] == pytest.approx(0.7)  # top 2 of 10 items: 70/100
    assert s["single_event_item_share"] == pytest.approx(0.3)
    assert s["sparsity"] == pytest.approx(1 - 12 / 20)
    assert s["events_per_item_median"] == 4.5
