"""One contract suite for every event/catalog/user store backend.

PostgreSQL runs against the real local server (database `test`); each test gets its own
schema, dropped afterwards. If the server is unreachable the PostgreSQL cases are skipped with
a loud reason, unless SHOPREC_REQUIRE_SERVICES=1 (CI), which turns the skip into a failure.
Adding a backend is one entry in `BACKENDS` and one branch in `make_store`.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from shoprec.storage import open_store
from shoprec.storage.base import EVENT_COLUMNS, ITEM_COLUMNS, Store
from shoprec.storage.ingest import ingest
from shoprec.types import Event, Item, User
from tests.services import PG_URL, require_pg

BACKENDS = ["sqlite", "postgresql"]
SESSION_TOKEN = f"shoprec_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def pg_session() -> Iterator[str]:
    """Schema-name prefix for this test session; drops leftovers at the end."""
    require_pg("store contract")
    yield SESSION_TOKEN
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (SESSION_TOKEN + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    token = request.getfixturevalue("pg_session")
    schema = f"{token}_{uuid.uuid4().hex[:8]}"
    yield f"{PG_URL}?schema={schema}"
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def ev(u: str, i: str | None, t: str, ts: float, **kw) -> Event:
    return Event(u, i, t, ts, **kw)


def test_add_events_is_idempotent(store: Store) -> None:
    events = [
        ev("u1", "i1", "view", 10.0),
        ev("u1", "i2", "click", 11.0),
        ev("u2", "i1", "view", 12.0),
    ]
    assert store.add_events(events).inserted == 3
    again = store.add_events(events)
    assert (again.inserted, again.duplicates) == (0, 3)
    assert store.count_events() == 3


def test_duplicates_inside_batch_and_against_stored(store: Store) -> None:
    first = store.add_events([ev("u1", "i1", "view", 1.0), ev("u1", "i1", "view", 1.0)])
    assert (first.inserted, first.duplicates) == (1, 1)
    # Same event_id with other content is the same event; a new timestamp is a new event.
    batch = [
        ev("u1", "i9", "click", 5.0, event_id="e1"),
        ev("u2", "i3", "view", 6.0, event_id="e1"),
        ev("u1", "i1", "view", 1.0),
        ev("u1", "i1", "view", 2.0),
    ]
    res = store.add_events(batch)
    assert (res.inserted, res.duplicates) == (2, 2)
    frame = store.events_frame()
    assert frame.loc[frame.event_id == "e1", "item_id"].tolist() == ["i9"]  # first one kept
    assert store.count_events() == 3
    assert store.add_events([]).inserted == 0


def test_events_frame_columns_values_and_since(store: Store) -> None:
    store.add_events(
        [
            ev("u1", "i1", "rating", 30.0, value=4.5, session_id="s1", context={"device": "ü"}),
            ev("u1", None, "search", 10.0, context={"query": "red shoes"}),
            ev("u2", "i2", "purchase", 20.0, event_id="o-7"),
        ]
    )
    f = store.events_frame()
    assert list(f.columns) == list(EVENT_COLUMNS)
    assert f.timestamp.tolist() == [10.0, 20.0, 30.0]  # ordered by time
    assert f.user_id.tolist() == ["u1", "u2", "u1"]
    assert f.item_id.iloc[0] is None
    assert f.context.iloc[0] == {"query": "red shoes"} and f.context.iloc[2] == {"device": "ü"}
    assert np.isnan(f.value.iloc[1]) and f.value.iloc[2] == 4.5
    assert f.event_id.iloc[1] == "o-7" and f.session_id.iloc[2] == "s1"
    assert f.timestamp.dtype == np.float64 and f.value.dtype == np.float64
    assert store.events_frame(since=20.0).timestamp.tolist() == [20.0, 30.0]
    assert len(store.events_frame(since=99.0)) == 0
    empty_cols = list(store.events_frame(since=99.0).columns)
    assert empty_cols == list(EVENT_COLUMNS)


def test_user_events_latest_in_time_order(store: Store) -> None:
    store.add_events([ev("u1", f"i{k}", "view", float(100 - k)) for k in range(10)])
    store.add_events([ev("u2", "x", "view", 1.0)])
    got = store.user_events("u1", limit=3)
    assert [e.item_id for e in got] == ["i2", "i1", "i0"]  # timestamps 98, 99, 100
    assert [e.timestamp for e in got] == [98.0, 99.0, 100.0]
    assert len(store.user_events("u1")) == 10
    assert store.user_events("nobody") == [] and store.user_events("u1", 0) == []


def test_user_item_history_is_user_events_without_itemless_ones(store: Store) -> None:
    # the request's narrow read: the same latest `limit` events, less those without an item
    store.add_events([ev("u1", f"i{k}", "view", float(k)) for k in range(5)])
    store.add_events([ev("u1", None, "search", 5.5), ev("u1", "z", "purchase", 6.0)])
    want = [(e.item_id, e.event_type, e.timestamp) for e in store.user_events("u1", 4) if e.item_id]
    assert (
        store.user_item_history("u1", 4)
        == want
        == [
            ("i3", "view", 3.0),
            ("i4", "view", 4.0),
            ("z", "purchase", 6.0),
        ]
    )
    assert store.user_item_history("nobody") == [] and store.user_item_history("u1", 0) == []


def test_equal_timestamps_keep_arrival_order(store: Store) -> None:
    # A view, a click and a cart in the same second: sequence models need them in that order.
    store.add_events([ev("u1", "z", "view", 5.0), ev("u1", "a", "click", 5.0)])
    store.add_events([ev("u1", "m", "add_to_cart", 5.0), ev("u1", "b", "view", 4.0)])
    assert [e.item_id for e in store.user_events("u1")] == ["b", "z", "a", "m"]
    assert store.events_frame().item_id.tolist() == ["b", "z", "a", "m"]


def test_upsert_overwrites_items_and_users(store: Store) -> None:
    n = store.upsert_items(
        [
            Item("i1", title="Old", price=10.0, stock=3, attributes={"c": "red"}),
            Item("i2", title="Two", category="A > B", active=False),
            Item("i1", title="Newer", price=12.5, stock=0, currency="EUR"),  # last one wins
        ]
    )
    assert n == 2
    store.upsert_items([Item("i2", title="Two v2", brand="Acme", created_at=5.0)])
    got = store.get_items(["i1", "i2", "missing"])
    assert set(got) == {"i1", "i2"}
    assert got["i1"] == Item("i1", title="Newer", price=12.5, stock=0, currency="EUR")
    assert got["i2"] == Item("i2", title="Two v2", brand="Acme", created_at=5.0, active=True)
    items = store.items_frame()
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert items.item_id.tolist() == ["i1", "i2"]
    assert items.price.tolist()[0] == 12.5 and np.isnan(items.price.iloc[1])
    assert items.attributes.tolist() == [{}, {}]
    store.upsert_users([User("u1", {"age": "30-39"}), User("u2")])
    store.upsert_users([User("u1", {"country": "DE"})])
    users = store.users_frame()
    assert users.user_id.tolist() == ["u1", "u2"]
    assert users.attributes.tolist() == [{"country": "DE"}, {}]


def test_delete_user_removes_only_that_user(store: Store) -> None:
    store.add_events([ev("u1", "i1", "view", 1.0), ev("u1", "i2", "click", 2.0)])
    store.add_events([ev("u2", "i1", "view", 3.0)])
    store.upsert_users([User("u1", {"a": 1}), User("u2")])
    store.upsert_items([Item("i1")])
    assert store.delete_user("u1") == {"events": 2, "users": 1}
    assert store.user_events("u1") == []
    assert store.events_frame().user_id.tolist() == ["u2"]
    assert store.users_frame().user_id.tolist() == ["u2"]
    assert list(store.get_items(["i1"])) == ["i1"]  # the catalog is not user data
    assert store.delete_user("u1") == {"events": 0, "users": 0}
    # Erased events can come back only by being sent again.
    assert store.add_events([ev("u1", "i1", "view", 1.0)]).inserted == 1


def test_purge_events_before(store: Store) -> None:
    store.add_events([ev("u1", "i1", "view", float(t)) for t in range(10)])
    assert store.purge_events_before(4.0) == 4
    assert store.events_frame().timestamp.min() == 4.0
    assert store.purge_events_before(4.0) == 0
    assert store.count_events() == 6


def test_stats_known_answers(store: Store) -> None:
    # Item a: 6 events, b..e: 1 each; 3 users. Top 20% of 5 items is 1 item: 6/10 events.
    events = [ev("u1", "a", "view", float(t)) for t in range(4)]
    events += [ev("u2", "a", "purchase", 10.0), ev("u3", "a", "view", 11.0)]
    events += [ev("u1", x, "click", 20.0) for x in "bcde"]
    events += [ev("u3", None, "search", 30.0)]
    store.add_events(events)
    store.upsert_items([Item(x) for x in "abcdefg"])
    store.upsert_users([User("u1")])
    s = store.stats()
    assert s["events"] == 11
    assert s["events_by_type"] == {"click": 4, "purchase": 1, "search": 1, "view": 5}
    assert (s["users"], s["items"], s["catalog_items"], s["user_records"]) == (3, 5, 7, 1)
    assert s["user_item_pairs"] == 7  # u1: a,b,c,d,e; u2: a; u3: a
    assert s["sparsity"] == pytest.approx(1 - 7 / 15)
    assert s["top20_items_event_share"] == pytest.approx(0.6)
    assert s["single_event_item_share"] == pytest.approx(0.8)
    # Gini of (1,1,1,1,6): 2*sum(i*x_i)/(n*sum) - (n+1)/n = 2*40/50 - 6/5 = 0.4
    assert s["item_gini"] == pytest.approx(0.4)
    assert (s["first_timestamp"], s["last_timestamp"]) == (0.0, 30.0)


def test_stats_of_empty_store(store: Store) -> None:
    s = store.stats()
    assert s["events"] == 0 and s["users"] == 0 and s["item_gini"] == 0.0
    assert s["first_timestamp"] is None


def test_unicode_ids_round_trip(store: Store) -> None:
    u, i = "用户-ü 🙂", "item/é'\";--"
    store.add_events([ev(u, i, "view", 1.0, session_id="séance", context={"q": "naïve \t x"})])
    store.upsert_items([Item(i, title="Crème brûlée\nline two", attributes={"颜色": "红"})])
    store.upsert_users([User(u, {"ville": "Zürich"})])
    assert store.add_events([ev(u, i, "view", 1.0)]).duplicates == 1
    (got,) = store.user_events(u)
    assert (got.user_id, got.item_id, got.session_id) == (u, i, "séance")
    assert got.context == {"q": "naïve \t x"}
    assert store.get_items([i])[i].attributes == {"颜色": "红"}
    assert store.get_items([i])[i].title == "Crème brûlée\nline two"
    assert store.users_frame().attributes.tolist() == [{"ville": "Zürich"}]
    assert store.delete_user(u) == {"events": 1, "users": 1}


def test_large_batch(store: Store) -> None:
    n = 20_000
    events = [ev(f"u{k % 997}", f"i{k % 1999}", "view", float(k)) for k in range(n)]
    res = store.add_events(events)
    assert (res.inserted, res.duplicates) == (n, 0)
    res = store.add_events(events[n // 2 :] + [ev("new", "i", "click", 0.5)])
    assert (res.inserted, res.duplicates) == (1, n // 2)
    assert store.count_events() == n + 1
    assert len(store.get_items([f"i{k}" for k in range(1200)])) == 0  # chunked IN lists


def test_data_survives_reopen(store_url: str) -> None:
    with open_store(store_url) as s:
        s.add_events([ev("u1", "i1", "view", 1.0)])
        s.upsert_items([Item("i1", title="T")])
    with open_store(store_url) as s:
        assert s.count_events() == 1 and s.get_items(["i1"])["i1"].title == "T"
        assert s.add_events([ev("u1", "i1", "view", 1.0)]).duplicates == 1


def test_closed_store_refuses(store_url: str) -> None:
    s = open_store(store_url)
    s.close()
    s.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        s.count_events()


def test_postgres_store_reconnects_after_the_server_drops_it(pg_session: str) -> None:
    import psycopg

    # Backend-specific: only a server can drop the connection. The schema goes at session end.
    with open_store(f"{PG_URL}?schema={pg_session}_reconnect") as s:
        s.add_events([ev("u1", "i1", "view", 1.0)])
        pid = s._conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            s.count_events()  # the call that meets the dropped connection fails...
        res = s.add_events([ev("u1", "i1", "view", 1.0), ev("u1", "i2", "view", 2.0)])
        assert (res.inserted, res.duplicates) == (1, 1)  # ...the next one reconnects
        assert s.count_events() == 2


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    def work(t: int) -> None:
        for b in range(5):
            store.add_events([ev(f"u{t}", f"i{k}", "view", float(b * 100 + k)) for k in range(50)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.count_events() == 4 * 5 * 50


def test_ingest_same_file_twice_adds_nothing(store: Store) -> None:
    raws = [
        {
            "user_id": "u1",
            "item_id": "i1",
            "event_type": "view",
            "timestamp": "2024-01-01T00:00:00Z",
        },
        {"user_id": "u1", "item_id": "i2", "event_type": "bogus", "timestamp": "1"},
        {"user_id": "u2", "item_id": "i1", "event_type": "orders", "timestamp": "1700000000"},
        {"user_id": "u2", "item_id": "i1", "event_type": "orders", "timestamp": "1700000000"},
    ]
    records = [("events.csv", k + 1, r) for k, r in enumerate(raws)]
    out = io.StringIO()
    first = ingest(records, store, rejects=out, batch_size=2)
    assert first.as_dict() == {
        "accepted": 2,
        "rejected": 1,
        "duplicates": 1,
        "reasons": {"unknown_event_type": 1},
    }
    second = ingest(records, store)
    assert (second.accepted, second.rejected, second.duplicates) == (0, 1, 3)
    assert store.count_events() == 2
    assert '"record":2' in out.getvalue()
