"""The HTTP contract, on the known-answer shop (see `shop.py`)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.serving.conftest import Keys
from tests.unit.serving.shop import T0


def recs(client: TestClient, user: str, **params: object) -> list[str]:
    r = client.get("/v1/recommendations", params={"user_id": user, "k": 5, **params})
    assert r.status_code == 200, r.text
    return [x["item_id"] for x in r.json()["items"]]


def view(user: str, item: str, dt: float = 0.0) -> dict[str, object]:
    return {
        "user_id": user,
        "item_id": item,
        "event_type": "view",
        "timestamp": T0 + 90 * 86400 + dt,
    }


def test_recommendations_contract_shape(client: TestClient) -> None:
    r = client.get("/v1/recommendations", params={"user_id": "u01", "k": 4})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"user_id", "items", "model_version"}
    assert body["user_id"] == "u01"
    assert body["model_version"] == client.app.state.service.models.get().version
    assert len(body["items"]) == 4
    for it in body["items"]:
        assert set(it) == {"item_id", "score", "explanation"}
        assert it["explanation"]["sources"] and it["explanation"]["evidence"]


def test_unknown_user_gets_cold_start_not_an_error(client: TestClient) -> None:
    assert recs(client, "nobody-knows-me") == recs(client, "another-stranger")
    assert recs(client, "nobody-knows-me")[0] == "i10"  # the trending item


def test_posted_event_changes_the_next_list_at_once(client: TestClient, keys: Keys) -> None:
    before = recs(client, "newbie")
    assert before[0] == "i10"
    r = client.post("/v1/events", json=[view("newbie", "i00")], headers=keys.auth("write"))
    assert r.json() == {"accepted": 1, "rejected": [], "duplicates": 0}
    after = client.get("/v1/recommendations", params={"user_id": "newbie", "k": 5}).json()
    assert after["items"][0]["item_id"] == "i01"  # "often viewed after i00"
    assert "i00" not in [x["item_id"] for x in after["items"]]  # seen items are excluded
    assert any("Kettle 0" in e for e in after["items"][0]["explanation"]["evidence"])


def test_events_durable_and_invalid_ones_named(client: TestClient, keys: Keys) -> None:
    batch = [
        view("u77", "i02"),
        {"user_id": "u77", "item_id": "i03", "event_type": "teleport", "timestamp": T0},
        "not an object",
        {"user_id": "u77", "event_type": "view", "timestamp": T0},
        view("u77", "i04", 1.0),
    ]
    r = client.post("/v1/events", json=batch, headers=keys.auth("write"))
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2
    rejected = {x["index"]: x for x in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3]
    assert rejected[1]["field"] == "event_type" and "event_type" in rejected[1]["reason"]
    assert "not_an_object" in rejected[2]["reason"]
    assert rejected[3]["field"] == "item_id"
    store = client.app.state.service.store
    stored = [e.item_id for e in store.user_events("u77")]
    assert stored == ["i02", "i04"]
    # the same batch again: idempotent, counted as duplicates
    again = client.post("/v1/events", json=batch[:1], headers=keys.auth("write")).json()
    assert again["duplicates"] == 1 and len(store.user_events("u77")) == 2


def test_stock_zero_removes_item_from_every_list(client: TestClient, keys: Keys) -> None:
    client.post("/v1/events", json=[view("shopper", "i00")], headers=keys.auth("write"))
    assert recs(client, "shopper")[0] == "i01"
    similar = client.get("/v1/items/i00/similar", params={"k": 5}).json()
    assert "i01" in [x["item_id"] for x in similar["items"]]
    r = client.put("/v1/items/i01", json={"stock": 0}, headers=keys.auth("write"))
    assert r.status_code == 200 and r.json()["stock"] == 0 and r.json()["title"] == "Kettle 1"
    assert "i01" not in recs(client, "shopper", k=20)
    assert "i01" not in recs(client, "stranger", k=20)
    similar = client.get("/v1/items/i00/similar", params={"k": 20}).json()
    assert "i01" not in [x["item_id"] for x in similar["items"]]
    for name in client.get("/v1/retrievers").json()["retrievers"]:
        got = client.get(f"/v1/retrievers/{name}", params={"user_id": "shopper", "n": 30}).json()
        assert "i01" not in [x["item_id"] for x in got["items"]]
    # back in stock: back in the list
    client.put("/v1/items/i01", json={"stock": 3}, headers=keys.auth("write"))
    assert recs(client, "shopper")[0] == "i01"


def test_new_item_is_known_at_once(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/items/i99/similar").status_code == 404
    new = {"item_id": "i99", "title": "Brand new kettle", "category": "Home > Kitchen", "price": 20}
    r = client.post("/v1/items", json=[new, {"item_id": ""}], headers=keys.auth("write"))
    assert r.json()["accepted"] == 1 and r.json()["rejected"][0]["field"] == "item_id"
    assert client.get("/v1/items/i99/similar", params={"k": 3}).status_code == 200
    one = {"item_id": "i98", "title": "Single", "category": "Books > Fiction"}
    assert client.post("/v1/items", json=one, headers=keys.auth("write")).json()["accepted"] == 1
    got = client.get("/v1/items", params={"ids": "i99,i00,zzz"}).json()
    assert [x["item_id"] for x in got] == ["i99", "i00"]
    assert got[0]["title"] == "Brand new kettle"


def test_filters_and_diversity_knob(client: TestClient) -> None:
    books = recs(client, "stranger", k=5, category="Books")
    assert books and all(int(i[1:]) >= 15 for i in books)
    cheap = recs(client, "stranger", k=5, max_price=15)
    assert cheap and all(int(i[1:]) <= 5 for i in cheap)
    focused = client.get(
        "/v1/recommendations", params={"user_id": "u01", "k": 6, "diversity": 0}
    ).json()
    varied = client.get(
        "/v1/recommendations", params={"user_id": "u01", "k": 6, "diversity": 1}
    ).json()
    assert [x["item_id"] for x in focused["items"]] != [x["item_id"] for x in varied["items"]]


def test_history_merges_store_and_online_state_latest_first(client: TestClient, keys: Keys) -> None:
    client.post("/v1/events", json=[view("u05", "i28", 10.0)], headers=keys.auth("write"))
    assert client.get("/v1/users/u05/history").status_code == 401  # personal: always keyed
    r = client.get("/v1/users/u05/history", params={"n": 3}, headers=keys.auth("read"))
    events = r.json()["events"]
    assert events[0]["item_id"] == "i28" and events[0]["title"] == "Novel 28"
    assert events[1]["item_id"] == "i10"  # the last trained event


def test_delete_user_removes_everything_at_once(client: TestClient, keys: Keys) -> None:
    client.post("/v1/events", json=[view("gone", "i00")], headers=keys.auth("write"))
    assert recs(client, "gone")[0] == "i01"
    state = client.app.state.service
    assert len(state.cache) > 0
    r = client.delete("/v1/users/gone", headers=keys.auth("admin"))
    assert r.status_code == 200
    assert r.json()["removed"]["online_state"] == 1 and r.json()["removed"]["cache"] >= 1
    assert state.store.user_events("gone") == [] and state.online.recent("gone") == []
    assert recs(client, "gone")[0] == "i10"  # a stranger again
    r = client.get("/v1/users/gone/history", headers=keys.auth("admin"))
    assert r.json()["events"] == []


def test_retrievers_alone(client: TestClient) -> None:
    names = client.get("/v1/retrievers").json()["retrievers"]
    assert sorted(names) == ["item_to_item", "trending"]
    body = client.get("/v1/retrievers/trending", params={"user_id": "x", "n": 3}).json()
    assert body["retriever"] == "trending" and body["items"][0]["item_id"] == "i10"
    assert client.get("/v1/retrievers/nope", params={"user_id": "x"}).status_code == 404


def test_health_metrics_docs(client: TestClient) -> None:
    version = client.app.state.service.models.get().version
    assert client.get("/health").json()["model_version"] == version
    client.get("/v1/recommendations", params={"user_id": "secret-shopper-42"})
    client.get("/v1/items/i03/similar")
    text = client.get("/metrics").text
    assert 'route="/v1/recommendations"' in text
    assert 'route="/v1/items/{item_id}/similar"' in text
    assert "secret-shopper-42" not in text and "i03" not in text
    assert f'shoprec_model_info{{version="{version}"}} 1.0' in text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/recommendations" in paths and "/v1/events" in paths


def test_cache_hits_but_never_bypasses_a_rule(client: TestClient, keys: Keys) -> None:
    first = recs(client, "u03")
    assert recs(client, "u03") == first
    text = client.get("/metrics").text
    assert 'shoprec_rec_cache_total{outcome="hit"} 1.0' in text
    client.put(f"/v1/items/{first[0]}", json={"active": False}, headers=keys.auth("write"))
    assert first[0] not in recs(client, "u03")
