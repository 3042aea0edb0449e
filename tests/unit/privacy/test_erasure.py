"""Erasure of one user, the hash-chained audit log / ledger, artifact marks and retention."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shoprec.storage import open_store
from shoprec.storage.erasure import (
    ErasureError,
    ErasureLog,
    forget_user,
    honour_erasures,
    mark_artifacts,
    pending_erasures,
    purge_expired,
)
from shoprec.types import Event, User


class FakeOnline:
    """A per-user state with `forget`, like the online state and result caches."""

    def __init__(self, users: dict[str, list[str]]):
        self.users = users

    def forget(self, user_id: str) -> int:
        return len(self.users.pop(user_id, []))


class Broken:
    def forget(self, user_id: str) -> int:
        raise ConnectionError("cache down")


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'shop.db'}")
    s.add_events(
        [
            Event("u1", "a", "view", 100.0),
            Event("u1", "b", "purchase", 200.0),
            Event("u2", "a", "view", 150.0),
            Event("u2", "c", "view", 5000.0),
        ]
    )
    s.upsert_users([User("u1", {"age_band": "30-39"}), User("u2")])
    yield s
    s.close()


def test_forget_user_removes_everything_and_logs_what(store, tmp_path):
    online = FakeOnline({"u1": ["a", "b"], "u2": ["a"]})
    cache = FakeOnline({"u1": ["recs"]})
    log = ErasureLog(tmp_path / "erasures.jsonl")
    rec = forget_user("u1", store, online, [("results", cache)], log, now=1000.0)
    assert rec.removed == {"events": 2, "users": 1, "online_state": 2, "results": 1}
    assert rec.complete and rec.pseudonym == "u1" and rec.requested_at == 1000.0
    assert set(store.events_frame()["user_id"]) == {"u2"}
    assert list(store.users_frame()["user_id"]) == ["u2"]
    assert "u1" not in online.users and "u1" not in cache.users
    assert log.records() == [rec]
    assert log.verify()


def test_failed_step_still_erases_the_rest_and_logs_incomplete(store, tmp_path):
    log = ErasureLog(tmp_path / "e.jsonl")
    with pytest.raises(ErasureError) as exc:
        forget_user("u1", store, None, [("results", Broken())], log)
    assert store.user_events("u1") == []
    rec = log.records()[0]
    assert not rec.complete and rec.errors == ["results: ConnectionError"]
    assert exc.value.record == rec


def test_audit_log_detects_tampering(tmp_path):
    log = ErasureLog(tmp_path / "e.jsonl")
    for u in ("u1", "u2", "u3"):
        forget_user(u, None, audit_log=log)
    assert log.verify()
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # delete the middle entry
    assert not log.verify()


def test_ledger_drops_erased_users_events_before_erasure_only(tmp_path):
    log = ErasureLog(tmp_path / "e.jsonl")
    rec = forget_user("u1", None, audit_log=log, now=1000.0)
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["a", "b", "a"],
            "timestamp": [500.0, 2000.0, 700.0],
        }
    )
    kept, honoured = honour_erasures(frame, log)
    # a re-ingested old event is dropped; a new event after the erasure (a returning
    # shopper) and other users' events stay
    assert list(zip(kept["user_id"], kept["timestamp"], strict=True)) == [
        ("u1", 2000.0),
        ("u2", 700.0),
    ]
    assert honoured == [rec.erasure_id]
    assert honour_erasures(frame, None)[1] == []


def test_artifacts_holding_the_user_are_marked(store, tmp_path):
    with_user = tmp_path / "art1"
    without = tmp_path / "art2"
    for folder, users in ((with_user, ["u1", "u2"]), (without, ["u2"])):
        folder.mkdir()
        (folder / "id_maps.json").write_text(json.dumps({"users": users, "items": ["a"]}))
    rec = forget_user("u1", store, artifacts=[with_user, without])
    assert rec.artifacts_marked == [str(with_user)]
    assert pending_erasures(with_user) == [rec.erasure_id]
    assert pending_erasures(without) == []
    assert mark_artifacts([with_user], "u1", rec.erasure_id) == [str(with_user)]
    assert pending_erasures(with_user) == [rec.erasure_id]  # idempotent


def test_retention_purges_old_events_and_logs_it(store, tmp_path):
    log = ErasureLog(tmp_path / "e.jsonl")
    day = 86400.0
    assert purge_expired(store, 0, now=10 * day, audit_log=log) == 0
    # keep the last (10 days - 5000 s + 1 s): only the event at t=5000 survives
    n = purge_expired(store, (10 * day - 4999.0) / day, now=10 * day, audit_log=log)
    assert n == 3
    assert list(store.events_frame()["timestamp"]) == [5000.0]
    (rec,) = log.records()
    assert rec.kind == "retention" and rec.removed["events"] == 3 and rec.pseudonym == ""
    assert log.erased() == {}


def test_apply_ledger_drops_erased_profiles_and_expired_events(tmp_path):
    from shoprec.storage.erasure import apply_ledger

    log = ErasureLog(tmp_path / "e.jsonl")
    rec = forget_user("u1", None, audit_log=log, now=1000.0)
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u2"],
            "item_id": ["a", "a", "b"],
            "timestamp": [900.0, 10.0, 86400.0 * 3],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2"], "attributes": [{}, {}]})
    ev, us, honoured = apply_ledger(events, users, log, retention_days=2, now=86400.0 * 3.5)
    assert list(ev["timestamp"]) == [86400.0 * 3]  # u1 erased, u2's old event expired
    assert list(us["user_id"]) == ["u2"]
    assert honoured == [rec.erasure_id]
