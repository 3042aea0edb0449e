"""Artifact swap: load in the background, swap one reference, refuse a corrupt artifact."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoprec.serving.app import smoke_test
from shoprec.serving.runtime import ModelHolder
from shoprec.storage.artifacts import ArtifactError, set_latest_version
from tests.unit.serving.conftest import Keys
from tests.unit.serving.shop import save_shop_artifact


def corrupt(version_dir: Path) -> None:
    """Flip bytes in a payload file (its checksum no longer matches)."""
    target = next(p for p in sorted(version_dir.rglob("*.npz")))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))


def test_holder_swaps_and_refuses(tmp_path: Path) -> None:
    v1 = save_shop_artifact(tmp_path)
    swaps: list[str] = []
    refused: list[Exception] = []
    holder = ModelHolder(
        str(tmp_path), smoke_test, lambda s: swaps.append(s.version), refused.append
    )
    served, changed = holder.reload()
    assert changed and served.version == v1.name and swaps == [v1.name]
    assert holder.reload() == (served, False)  # same pointer: nothing to do
    v2 = save_shop_artifact(tmp_path, seed=1)
    assert holder.check_once() and holder.get().version == v2.name
    # a corrupt version is refused; the old one keeps serving, and it is not retried
    v3 = save_shop_artifact(tmp_path, seed=2)
    corrupt(v3)
    assert holder.check_once() is False
    assert holder.get().version == v2.name and len(refused) == 1
    assert holder.check_once() is False and len(refused) == 1
    with pytest.raises(ArtifactError, match="checksum"):
        holder.reload()
    # an explicit version folder works, a missing one is refused
    assert holder.reload(v1.name)[0].version == v1.name
    with pytest.raises(ArtifactError):
        holder.reload("no-such-version")


def test_catalog_changes_and_erasures_survive_a_swap(tmp_path: Path) -> None:
    from shoprec.pipeline.request import RecRequest
    from shoprec.types import Item

    save_shop_artifact(tmp_path)
    holder = ModelHolder(str(tmp_path), smoke_test)
    holder.reload()
    holder.update_items([Item("i01", stock=0)])
    save_shop_artifact(tmp_path, seed=1)
    assert holder.check_once()
    recs = holder.get().pipeline.recommend(RecRequest(user_id="x", k=10, history=("i00",)))
    assert "i01" not in [r.item_id for r in recs]


def test_reload_route_swaps_without_a_failed_request(
    tmp_path: Path, make_client: Callable[..., TestClient], keys: Keys
) -> None:
    v1 = save_shop_artifact(tmp_path)
    client = make_client(artifacts=str(tmp_path), reload_poll_s=0.0)
    assert client.get("/health").json()["model_version"] == v1.name
    codes: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get("/v1/recommendations", params={"user_id": "u01", "k": 5})
            codes.append(r.status_code)
            versions.add(r.json().get("model_version", ""))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for seed in (1, 2, 3):
            v = save_shop_artifact(tmp_path, seed=seed)
            r = client.post("/v1/admin/reload", headers=keys.auth("admin"))
            assert r.status_code == 200 and r.json()["model_version"] == v.name
        bad = save_shop_artifact(tmp_path, seed=4)
        corrupt(bad)
        r = client.post("/v1/admin/reload", headers=keys.auth("admin"))
        assert r.status_code == 409 and "checksum" in r.json()["detail"]
        set_latest_version(tmp_path, v.name)  # the pointer back on a good version
    finally:
        stop.set()
        t.join()
    assert codes and set(codes) == {200}
    assert client.get("/health").json()["model_version"] == v.name
    assert len(versions) >= 2
    metrics = client.get("/metrics").text
    assert 'shoprec_artifact_loads_total{outcome="refused"} 1.0' in metrics


def test_corrupt_first_artifact_refuses_to_start(
    tmp_path: Path, make_client: Callable[..., TestClient]
) -> None:
    corrupt(save_shop_artifact(tmp_path))
    with pytest.raises(ArtifactError):
        make_client(artifacts=str(tmp_path))
