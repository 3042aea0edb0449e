"""The service's retention purge: with `retention_days` set, events older than that leave the
store at start and on every later purge (a fresh event stays), the purge is counted in
/metrics and logged in the erasure log; with 0 nothing is removed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from shoprec.serving.retention import RetentionPurger
from shoprec.storage import open_store
from shoprec.storage.base import Event
from shoprec.storage.erasure import ErasureLog
from tests.unit.serving.conftest import Keys
from tests.unit.serving.shop import events_frame, fill_store


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_the_service_purges_expired_events_and_keeps_fresh_ones(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Path
) -> None:
    shop_events = len(events_frame())  # all dated January 2026, long before "30 days ago"
    log_path = tmp_path / "erasures.jsonl"
    client = make_client(retention_days=30.0, retention_purge_s=0.05, erasure_log=str(log_path))
    store = client.app.state.service.store
    assert wait_for(lambda: store.count_events() == 0)
    fresh = {"user_id": "u01", "item_id": "i03", "event_type": "view", "timestamp": time.time()}
    r = client.post("/v1/events", json=[fresh], headers=keys.auth("write"))
    assert r.json()["accepted"] == 1
    time.sleep(0.3)  # several purges later, the fresh event is still there
    assert store.count_events() == 1
    text = client.get("/metrics").text
    assert f"shoprec_retention_purged_events_total {float(shop_events)}" in text
    (rec,) = ErasureLog(log_path).records()
    assert rec.kind == "retention" and rec.removed["events"] == shop_events


def test_without_a_retention_period_nothing_is_purged(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(retention_purge_s=0.05)
    store = client.app.state.service.store
    time.sleep(0.2)
    assert store.count_events() == len(events_frame())


def test_the_purger_survives_a_failing_store_and_stops(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    fill_store(store)
    calls = []

    class Flaky:
        def purge_events_before(self, cutoff: float) -> int:
            calls.append(cutoff)
            if len(calls) == 1:
                raise OSError("disk hiccup")
            return store.purge_events_before(cutoff)

    purger = RetentionPurger(Flaky(), days=30.0, interval_s=0.02)  # type: ignore[arg-type]
    purger.start()
    try:
        assert wait_for(lambda: store.count_events() == 0)
    finally:
        purger.stop()
    assert len(calls) >= 2 and purger.purged == len(events_frame())
    n = len(calls)
    store.add_events([Event("u01", "i01", "view", 1.0)])
    time.sleep(0.1)
    assert len(calls) == n  # stopped: no purge after stop()
    store.close()
