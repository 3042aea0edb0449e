"""API keys, scopes, rate limits: 401 / 403 / 429 as documented in `shoprec.serving.auth`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoprec.config import ConfigError
from shoprec.serving.auth import KeyRing, RateLimiter, hash_key, mint_key, read_keys_file
from shoprec.serving.settings import ApiKeySpec
from tests.unit.serving.conftest import Keys

EVENT = {"user_id": "u1", "item_id": "i01", "event_type": "view", "timestamp": 1_767_225_600}


def test_keys_are_random_and_stored_only_as_hashes() -> None:
    a, b = mint_key(), mint_key()
    assert a != b and a.startswith("shk_") and len(a) >= 40
    h = hash_key(a)
    assert h.startswith("sha256:") and a not in h
    assert hash_key(a, "pepper").startswith("hmac-sha256:")
    assert hash_key(a, "pepper") != hash_key(a, "other pepper")
    ring = KeyRing(
        [ApiKeySpec(h, ("read",), "r"), ApiKeySpec(hash_key(b, "p"), ("write",), "w")], pepper="p"
    )
    assert ring.lookup(a).name == "r" and ring.lookup(b).name == "w"
    assert ring.lookup("shk_guess") is None and ring.lookup("") is None


def test_hmac_hash_without_pepper_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pepper"):
        KeyRing([ApiKeySpec(hash_key("k", "p"), ("read",), "x")])


def test_keys_file(tmp_path: Path) -> None:
    key = mint_key()
    f = tmp_path / "keys"
    f.write_text(f"# comment\n\n{hash_key(key)} read,write shop backend\n")
    [spec] = read_keys_file(f)
    assert spec.scopes == ("read", "write") and spec.name == "shop backend"
    f.write_text(f"{hash_key(key)} read,superuser\n")
    with pytest.raises(ConfigError, match=r"keys:1: unknown scope"):
        read_keys_file(f)
    f.write_text("plaintext-key read\n")
    with pytest.raises(ConfigError, match="keys:1"):
        read_keys_file(f)


def test_writes_need_a_write_key(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/events", json=[EVENT])
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post("/v1/events", json=[EVENT], headers={"Authorization": "Bearer shk_nope"})
    assert r.status_code == 401
    r = client.post("/v1/events", json=[EVENT], headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    assert client.post("/v1/events", json=[EVENT], headers=keys.auth("read")).status_code == 403
    assert client.post("/v1/events", json=[EVENT], headers=keys.auth("write")).status_code == 200
    assert client.post("/v1/events", json=[EVENT], headers=keys.auth("admin")).status_code == 200


def test_erasure_and_reload_need_admin(client: TestClient, keys: Keys) -> None:
    assert client.delete("/v1/users/u1").status_code == 401
    assert client.delete("/v1/users/u1", headers=keys.auth("write")).status_code == 403
    assert client.delete("/v1/users/u1", headers=keys.auth("admin")).status_code == 200
    assert client.post("/v1/admin/reload", headers=keys.auth("write")).status_code == 403


def test_reads_open_by_default_but_a_bad_key_is_still_refused(client: TestClient) -> None:
    assert client.get("/v1/recommendations", params={"user_id": "u1"}).status_code == 200
    r = client.get(
        "/v1/recommendations", params={"user_id": "u1"}, headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 401


def test_history_needs_a_read_key_even_when_reads_are_open(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/users/u01/history").status_code == 401
    assert client.get("/v1/users/u01/history", headers=keys.auth("write")).status_code == 403
    assert client.get("/v1/users/u01/history", headers=keys.auth("read")).status_code == 200


def test_reads_keyed_by_setting(make_client: Callable[..., TestClient], keys: Keys) -> None:
    client = make_client(read_requires_key=True)
    params = {"user_id": "u1"}
    assert client.get("/v1/recommendations", params=params).status_code == 401
    assert (
        client.get("/v1/recommendations", params=params, headers=keys.auth("write")).status_code
        == 403
    )
    assert (
        client.get("/v1/recommendations", params=params, headers=keys.auth("read")).status_code
        == 200
    )
    assert (
        client.get("/v1/recommendations", params=params, headers=keys.auth("admin")).status_code
        == 200
    )
    assert client.get("/health").status_code == 200  # operations stay open


def test_no_keys_configured_means_no_writes(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys=())
    assert client.post("/v1/events", json=[EVENT]).status_code == 401
    dev = make_client(api_keys=(), open_writes=True)
    assert dev.post("/v1/events", json=[EVENT]).status_code == 200


def test_rate_limit_per_key_gives_429_with_retry_after(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(rate_limit_per_s=0.5, rate_limit_burst=3)
    codes = [
        client.post("/v1/events", json=[EVENT], headers=keys.auth("write")).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    r = client.post("/v1/events", json=[EVENT], headers=keys.auth("write"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # another key has its own bucket
    assert client.post("/v1/events", json=[EVENT], headers=keys.auth("admin")).status_code == 200


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert limiter.take("k") == 0 and limiter.take("k") == 0
    assert limiter.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("k") == 0
    assert limiter.take("other") == 0
    assert RateLimiter(rate=0, burst=1).take("k") == 0  # off
