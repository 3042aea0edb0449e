"""One contract suite for every online-state backend (in-process memory, real Redis).

Redis cases use a key prefix unique to the test and clear it afterwards. If Redis is
unreachable they are skipped with a loud reason, unless SHOPREC_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from shoprec.storage import open_online_state
from shoprec.storage.online_state import OnlineState
from shoprec.types import Event
from tests.services import REDIS_URL, require_redis

BACKENDS = ["memory", "redis"]

Factory = Callable[..., OnlineState]


@pytest.fixture(params=BACKENDS)
def make_state(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Opens states of the backend under test; cleans up everything they wrote."""
    opened: list[OnlineState] = []
    prefix = f"shoprec_test:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
    if request.param == "redis":
        require_redis("online-state contract")

    def make(max_events: int = 100, suffix: str = "") -> OnlineState:
        if request.param == "memory":
            url = f"memory://?max_events={max_events}"
        else:
            url = f"{REDIS_URL}?prefix={prefix}{suffix}&max_events={max_events}"
        state = open_online_state(url)
        opened.append(state)
        return state

    yield make
    for state in opened:
        state.clear()
        state.close()


def ev(u: str, i: str | None, ts: float, t: str = "view", **kw) -> Event:
    return Event(u, i, t, ts, **kw)


def test_recent_is_time_ordered_and_limited(make_state: Factory) -> None:
    s = make_state()
    s.append("u1", [ev("u1", "b", 20.0), ev("u1", "a", 10.0)])
    s.append("u1", [ev("u1", "c", 30.0), ev("u1", "a2", 10.0)])  # ties keep arrival order
    assert [e.item_id for e in s.recent("u1", 10)] == ["a", "a2", "b", "c"]
    assert [e.item_id for e in s.recent("u1", 2)] == ["b", "c"]
    assert s.recent("u1", 0) == [] and s.recent("nobody", 5) == []


def test_fields_round_trip(make_state: Factory) -> None:
    s = make_state()
    events = [
        ev("u1", "i1", 1.5, "rating", value=4.0, session_id="s", event_id="e", context={"d": "ü"}),
        ev("u1", None, 2.0, "search", context={"query": "red shoes"}),
    ]
    s.append("u1", events)
    assert s.recent("u1", 5) == events


def test_capped_per_user_keeps_latest_arrivals(make_state: Factory) -> None:
    s = make_state(max_events=5)
    for k in range(12):
        s.append("u1", [ev("u1", f"i{k}", float(k))])
    s.append("u2", [ev("u2", f"j{k}", float(k)) for k in range(8)])  # one append over the cap
    assert [e.item_id for e in s.recent("u1", 50)] == [f"i{k}" for k in range(7, 12)]
    assert [e.item_id for e in s.recent("u2", 50)] == [f"j{k}" for k in range(3, 8)]


def test_forget_removes_only_that_user(make_state: Factory) -> None:
    s = make_state()
    s.append("u1", [ev("u1", "i", 1.0)])
    s.append("u2", [ev("u2", "i", 1.0)])
    s.forget("u1")
    s.forget("never-seen")
    assert s.recent("u1", 5) == [] and len(s.recent("u2", 5)) == 1
    s.append("u1", [ev("u1", "j", 2.0)])
    assert [e.item_id for e in s.recent("u1", 5)] == ["j"]


def test_clear_stays_inside_its_namespace(make_state: Factory) -> None:
    a, b = make_state(suffix="a:"), make_state(suffix="b:")
    a.append("u1", [ev("u1", "i", 1.0)])
    b.append("u1", [ev("u1", "k", 1.0)])
    a.clear()
    assert a.recent("u1", 5) == []
    assert [e.item_id for e in b.recent("u1", 5)] == ["k"]


def test_unicode_and_awkward_user_ids(make_state: Factory) -> None:
    s = make_state()
    ids = ["用户🙂", "a*b?[c]", "with space", "x:y"]
    for k, u in enumerate(ids):
        s.append(u, [ev(u, f"i{k}", float(k))])
    for k, u in enumerate(ids):
        assert [e.item_id for e in s.recent(u, 5)] == [f"i{k}"]
        assert s.recent(u, 5)[0].user_id == u
    s.forget("a*b?[c]")  # glob characters are not patterns
    assert s.recent("x:y", 5) and s.recent("a*b?[c]", 5) == []


def test_concurrent_appends_lose_nothing(make_state: Factory) -> None:
    s = make_state(max_events=1000)

    def work(t: int) -> None:
        for k in range(50):
            s.append("shared", [ev("shared", f"t{t}-{k}", float(k))])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(s.recent("shared", 1000)) == 200


def test_empty_append_is_a_no_op(make_state: Factory) -> None:
    s = make_state()
    s.append("u1", [])
    assert s.recent("u1", 5) == []
