"""A real `shoprec serve` watching the artifacts root: a new version is swapped in with no
failed request; a corrupt one is refused and the old one keeps serving."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from shoprec.storage import open_store
from tests.unit.serving.live import live_server
from tests.unit.serving.shop import fill_store, save_shop_artifact
from tests.unit.serving.test_runtime import corrupt


def wait_for_version(url: str, version: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url + "/health", timeout=5).json()["model_version"] == version:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_latest_pointer_hot_swap_under_load(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(store) as s:
        fill_store(s)
    root = tmp_path / "artifacts"
    v1 = save_shop_artifact(root)
    with live_server(
        ["--artifacts", str(root), "--store", store, "--reload-poll", "0.2", "--rate-limit", "0"],
        tmp_path / "server.log",
    ) as server:
        results: list[tuple[int, str]] = []
        errors: list[str] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.get("/v1/recommendations", params={"user_id": "u07", "k": 5})
                        results.append((r.status_code, r.json().get("model_version", "")))
                    except httpx.HTTPError as exc:  # a dropped connection is a failed request
                        errors.append(repr(exc))

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            assert wait_for_version(server.url, v1.name)
            v2 = save_shop_artifact(root, seed=1)  # writes the version, then moves `latest`
            assert wait_for_version(server.url, v2.name)
            bad = save_shop_artifact(root, seed=2)
            corrupt(bad)
            time.sleep(1.5)  # several watcher rounds
            assert httpx.get(server.url + "/health").json()["model_version"] == v2.name
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        log = server.log()
        metrics = httpx.get(server.url + "/metrics").text
    assert not errors, errors[:3]
    assert results and {code for code, _ in results} == {200}
    assert {v for _, v in results} >= {v1.name, v2.name}
    assert bad.name not in {v for _, v in results}
    assert f"cannot serve artifact {bad.name}" in log and "checksum" in log
    assert 'shoprec_artifact_loads_total{outcome="refused"} 1.0' in metrics
