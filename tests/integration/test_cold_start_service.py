"""Cold start through the HTTP service: a product posted to POST /v1/items is recommendable on
the next request, and a shopper with no history gets onboarding results.

Known answers from tests/unit/features/catalog.py: four categories with their own words.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoprec.features.fusion import ContentEncoder
from shoprec.pipeline import PipelineConfig
from shoprec.pipeline.build import build_pipeline
from shoprec.pipeline.cold_start import attach_cold_start
from shoprec.serving.app import create_app
from shoprec.serving.auth import hash_key, mint_key
from shoprec.serving.settings import ApiKeySpec, ServingSettings
from shoprec.storage import open_online_state, open_store
from tests.unit.features import catalog


@pytest.fixture
def service(tmp_path: Path):
    data = catalog.make_data(n_users=80)
    pipe = build_pipeline(
        data, PipelineConfig(item_to_item=False, exploration_slots=1, ranker="weighted")
    )
    enc = ContentEncoder(text_backend="tfidf", text_dim=16).fit(data.item_table)
    attach_cold_start(pipe, data, enc)
    key = mint_key()
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    online = open_online_state("memory://")
    settings = ServingSettings(
        api_keys=(ApiKeySpec(hash_key(key), ("read", "write"), "shop"),), rate_limit_per_s=0.0
    )
    app = create_app(settings, store=store, online=online, pipeline=pipe)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {key}"}, data
    online.close()
    store.close()


def test_posted_item_is_recommended_and_has_similar_items_at_once(service):
    client, auth, data = service
    new = {
        "item_id": "tent-2027",
        "title": "yellow camping tent model 2027",
        "description": "A yellow camping tent for camping",
        "category": "Outdoor > Camping",
        "brand": "Brand31",
        "price": 45.0,
        "stock": 10,
    }
    r = client.post("/v1/items", json=[new], headers=auth)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    now = time.time()
    events = [
        {
            "user_id": "hiker",
            "item_id": catalog.item_id(3, j),
            "event_type": "view",
            "timestamp": now + j,
        }
        for j in range(3)
    ]
    assert client.post("/v1/events", json=events, headers=auth).json()["accepted"] == 3
    recs = client.get(
        "/v1/recommendations", params={"user_id": "hiker", "k": 10}, headers=auth
    ).json()
    ids = [x["item_id"] for x in recs["items"]]
    assert "tent-2027" in ids, ids
    sim = client.get("/v1/items/tent-2027/similar", params={"k": 5}, headers=auth)
    assert sim.status_code == 200
    sim_ids = [x["item_id"] for x in sim.json()["items"]]
    assert sim_ids and all(i.startswith("k3_") for i in sim_ids), sim_ids
    # a first click on the new product is used at once: camping follows, no retraining
    click = {"user_id": "newcomer", "item_id": "tent-2027", "event_type": "click", "timestamp": now}
    assert client.post("/v1/events", json=[click], headers=auth).json()["accepted"] == 1
    recs = client.get(
        "/v1/recommendations", params={"user_id": "newcomer", "k": 4}, headers=auth
    ).json()["items"]
    assert sum(x["item_id"].startswith("k3_") for x in recs) >= 3, recs


def test_new_shopper_gets_onboarding_across_categories(service):
    client, auth, data = service
    recs = client.get(
        "/v1/recommendations", params={"user_id": "first-visit", "k": 8}, headers=auth
    ).json()["items"]
    assert len(recs) == 8
    assert any("onboarding" in x["explanation"]["sources"] for x in recs)
    assert len({x["item_id"][1] for x in recs}) >= 3  # several categories, not one
