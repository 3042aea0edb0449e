"""ingest -> train -> serve -> POST /v1/events -> GET /v1/recommendations sees the event.

The synthetic shop is ingested with the library calls behind `shoprec ingest`; training and
serving run the real CLI in child processes (`shoprec train`, `shoprec serve`, a real uvicorn
server on 127.0.0.1), like a shop would.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shoprec.data.readers import read_records
from shoprec.data.synthetic import generate_shop, write_shop
from shoprec.serving.auth import hash_key, mint_key
from shoprec.storage import open_store
from shoprec.storage.ingest import ingest
from tests.unit.serving.live import live_server, run_cli


@pytest.mark.slow
def test_ingest_train_serve_feedback(tmp_path: Path) -> None:
    shop, store = tmp_path / "shop", f"sqlite:///{tmp_path / 'shop.db'}"
    write_shop(generate_shop(n_users=150, n_items=80, seed=0), shop, images=False)
    with open_store(store) as s:  # the library calls behind `shoprec ingest`
        for kind in ("items", "events"):
            report = ingest(read_records(shop / f"{kind}.csv", kind=kind), s, kind=kind)
            assert report.accepted > 0
    config = tmp_path / "shoprec.toml"
    config.write_text('[pipeline]\nranker = "weighted"\n')
    run_cli(
        ["train", "--store", store, "--out", str(tmp_path / "artifacts"), "--config", str(config)]
    )
    key = mint_key()
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{hash_key(key)} write integration-test\n")

    events = pd.read_csv(shop / "events.csv")
    items = pd.read_csv(shop / "items.csv").set_index("item_id")
    views = events[events["event_type"] == "view"]["item_id"].astype(str)
    seed_item = views.value_counts().index[0]  # the most viewed item has known successors
    title = str(items.loc[seed_item, "title"]) if seed_item in items.index else seed_item

    with live_server(
        [
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--store",
            store,
            "--keys-file",
            str(keys_file),
            "--reload-poll",
            "0",
        ],
        tmp_path / "server.log",
    ) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            params = {"user_id": "brand-new-shopper", "k": 10}
            before = http.get("/v1/recommendations", params=params).json()
            assert len(before["items"]) == 10
            event = {
                "user_id": "brand-new-shopper",
                "item_id": seed_item,
                "event_type": "view",
                "timestamp": time.time(),
            }
            r = http.post("/v1/events", json=[event], headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and r.json()["accepted"] == 1
            after = http.get("/v1/recommendations", params=params).json()
    ids_before = [x["item_id"] for x in before["items"]]
    ids_after = [x["item_id"] for x in after["items"]]
    assert ids_after != ids_before
    assert seed_item not in ids_after  # just seen: excluded
    evidence = [e for x in after["items"] for e in x["explanation"]["evidence"]]
    assert any(title in e for e in evidence), evidence
    assert "brand-new-shopper" not in server.log()  # no raw id in the server's log
