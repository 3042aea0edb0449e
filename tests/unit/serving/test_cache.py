"""The recommendation cache: LRU, per-user erasure, and state versions that see every event."""

from __future__ import annotations

from shoprec.serving.cache import ResultCache, state_version
from shoprec.types import Event


def test_lru_and_forget_user() -> None:
    cache = ResultCache(size=2)
    cache.put("u1", ("u1", 1), ["a"])
    cache.put("u2", ("u2", 1), ["b"])
    assert cache.get(("u1", 1)) == ["a"]  # u1 is now the most recent
    cache.put("u3", ("u3", 1), ["c"])  # evicts u2
    assert cache.get(("u2", 1)) is None and len(cache) == 2
    assert cache.forget("u1") == 1 and cache.get(("u1", 1)) is None
    assert cache.forget("u1") == 0
    off = ResultCache(size=0)
    off.put("u", ("u",), [1])
    assert off.get(("u",)) is None


def test_state_version_changes_with_any_event() -> None:
    e1 = Event("u", "i1", "view", 1.0)
    e2 = Event("u", "i2", "view", 2.0)
    assert state_version([e1]) == state_version([Event("u", "i1", "view", 1.0)])
    assert state_version([e1]) != state_version([e1, e2])
    assert state_version([e1, e2]) != state_version([e2, e1])
    assert state_version([]) != state_version([e1])


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = ResultCache(size=10, ttl_s=60.0, clock=lambda: now[0])
    cache.put("u", ("u", 1), ["a"])
    now[0] = 59.0
    assert cache.get(("u", 1)) == ["a"]
    now[0] = 61.0
    assert cache.get(("u", 1)) is None and len(cache) == 0 and cache.forget("u") == 0
