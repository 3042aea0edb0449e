"""Two service instances sharing online state in Redis (and one store): an event posted to one
changes the other's next list at once, and erasure through one is seen by the other."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from shoprec.serving.app import create_app
from shoprec.serving.auth import hash_key, mint_key
from shoprec.serving.settings import ApiKeySpec, ServingSettings
from shoprec.storage import open_store
from tests.services import REDIS_URL, require_redis
from tests.unit.serving.shop import T0, fill_store, save_shop_artifact


def test_two_instances_share_online_state(tmp_path: Path) -> None:
    require_redis("service with shared online state")
    store_url = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(store_url) as store:
        fill_store(store)
    save_shop_artifact(tmp_path / "artifacts")
    prefix = f"shoprec-test-{uuid.uuid4().hex[:8]}:"
    key = mint_key()
    settings = ServingSettings(
        artifacts=str(tmp_path / "artifacts"),
        store_url=store_url,
        online_url=f"{REDIS_URL}?prefix={prefix}",
        api_keys=(ApiKeySpec(hash_key(key), ("admin",), "ops"),),
        reload_poll_s=0.0,
    )
    auth = {"Authorization": f"Bearer {key}"}
    params = {"user_id": "shared-shopper", "k": 5}
    try:
        with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
            assert (
                b.get("/v1/recommendations", params=params).json()["items"][0]["item_id"] == "i10"
            )
            event = {
                "user_id": "shared-shopper",
                "item_id": "i00",
                "event_type": "view",
                "timestamp": T0 + 90 * 86400,
            }
            assert a.post("/v1/events", json=[event], headers=auth).json()["accepted"] == 1
            # instance b never saw the POST: it reads the shared state on its next request
            top = b.get("/v1/recommendations", params=params).json()["items"][0]
            assert top["item_id"] == "i01"
            assert b.app.state.service.online.recent("shared-shopper")[0].item_id == "i00"
            assert a.delete("/v1/users/shared-shopper", headers=auth).status_code == 200
            assert b.app.state.service.online.recent("shared-shopper") == []
            assert (
                b.get("/v1/recommendations", params=params).json()["items"][0]["item_id"] == "i10"
            )
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for k in client.scan_iter(match=prefix + "*"):
            client.delete(k)
        client.close()


@pytest.mark.slow
def test_shoprec_serve_with_two_workers(tmp_path: Path) -> None:
    require_redis("service with shared online state")
    import httpx

    from tests.unit.serving.live import live_server

    store_url = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(store_url) as store:
        fill_store(store)
    save_shop_artifact(tmp_path / "artifacts")
    prefix = f"shoprec-test-{uuid.uuid4().hex[:8]}:"
    key = mint_key()
    (tmp_path / "keys").write_text(f"{hash_key(key)} write shop\n")
    args = [
        "--artifacts",
        str(tmp_path / "artifacts"),
        "--store",
        store_url,
        "--workers",
        "2",
        "--online",
        f"{REDIS_URL}?prefix={prefix}",
        "--keys-file",
        str(tmp_path / "keys"),
        "--reload-poll",
        "0",
    ]
    try:
        with live_server(args, tmp_path / "server.log") as server:
            event = {
                "user_id": "w-shopper",
                "item_id": "i00",
                "event_type": "view",
                "timestamp": T0 + 90 * 86400,
            }
            r = httpx.post(
                server.url + "/v1/events", json=[event], headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200
            # fresh connections land on either worker; every one sees the event at once
            tops = {
                httpx.get(
                    server.url + "/v1/recommendations", params={"user_id": "w-shopper", "k": 3}
                ).json()["items"][0]["item_id"]
                for _ in range(20)
            }
            assert tops == {"i01"}
            log = server.log()
        assert log.count("Started server process") == 2  # two workers really ran
        assert "w-shopper" not in log and key not in log
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for k in client.scan_iter(match=prefix + "*"):
            client.delete(k)
        client.close()
