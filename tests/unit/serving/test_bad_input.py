"""Malformed requests get a 4xx that names the field; client input never causes a 5xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.unit.serving.conftest import Keys

GOOD = {"user_id": "u1", "k": 5}


def loc_names(response: Any) -> list[str]:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [str(part) for d in detail for part in d["loc"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": 5}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 300}, "user_id"),
        ({"user_id": "a\x00b"}, "user_id"),
        ({**GOOD, "k": "ten"}, "k"),
        ({**GOOD, "k": 0}, "k"),
        ({**GOOD, "k": 100000}, "k"),
        ({**GOOD, "k": 500}, "k"),  # above the service's max_k (200)
        ({**GOOD, "diversity": 1.5}, "diversity"),
        ({**GOOD, "diversity": "nan"}, "diversity"),
        ({**GOOD, "min_price": -1}, "min_price"),
        ({**GOOD, "max_price": "inf"}, "max_price"),
        ({**GOOD, "min_price": 50, "max_price": 10}, "min_price"),
        ({**GOOD, "category": ""}, "category"),
    ],
)
def test_bad_recommendation_queries_name_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    r = client.get("/v1/recommendations", params=params)
    assert r.status_code == 422, r.text
    assert field in loc_names(r)


def test_bad_bodies_name_the_field(client: TestClient, keys: Keys) -> None:
    w = keys.auth("write")
    r = client.post(
        "/v1/events", content=b"{not json", headers={**w, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "body" in loc_names(r)
    r = client.post("/v1/events", json={"user_id": "u1"}, headers=w)  # an object, not a list
    assert r.status_code == 422 and "body" in loc_names(r)
    r = client.put("/v1/items/i01", json={"price": "cheap"}, headers=w)
    assert r.status_code == 422 and "price" in loc_names(r)
    r = client.put("/v1/items/i01", json={"item_id": "i02"}, headers=w)
    assert r.status_code == 422 and "item_id" in loc_names(r)
    r = client.put("/v1/items/i01", json={"stock": 1.5}, headers=w)
    assert r.status_code == 422 and "stock" in loc_names(r)
    r = client.get("/v1/items/i01/similar", params={"k": -1})
    assert r.status_code == 422 and "k" in loc_names(r)
    r = client.get("/v1/retrievers/trending", params={"user_id": "u", "n": 10**6})
    assert r.status_code == 422 and "n" in loc_names(r)
    r = client.post("/v1/admin/reload", params={"version": "../etc"}, headers=keys.auth("admin"))
    assert r.status_code == 422 and "version" in loc_names(r)


def test_body_size_cap_413(make_client: Callable[..., TestClient], keys: Keys) -> None:
    client = make_client(max_body_bytes=2_000, max_events_per_request=5)
    ev = {"user_id": "u1", "item_id": "i01", "event_type": "view", "timestamp": 1_767_225_600}
    w = keys.auth("write")
    r = client.post("/v1/events", json=[ev] * 100, headers=w)
    assert r.status_code == 413 and "body" in loc_names(r)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while streaming
        yield b"["
        for _ in range(100):
            yield b'{"user_id": "u1", "item_id": "i01", "event_type": "view", "timestamp": 1},'
        yield b"{}]"

    r = client.post(
        "/v1/events", content=chunks(), headers={**w, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = client.post("/v1/events", json=[ev] * 6, headers=w)  # small body, too many events
    assert r.status_code == 413 and "events" in loc_names(r)
    assert client.post("/v1/events", json=[ev] * 5, headers=w).status_code == 200


def test_unknown_routes_and_methods_are_4xx(client: TestClient) -> None:
    assert client.get("/v1/nope").status_code == 404
    assert client.patch("/v1/recommendations").status_code == 405
    assert client.get("/v1/items/nope/similar").status_code == 404


# ------------------------------------------------------------------ fuzzing (schemathesis)
# Driven by hand rather than with `schemathesis.pytest.from_fixture`, whose lazy loader does
# not run under pytest 9: every operation, valid and invalid inputs, a bounded example count.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_openapi_never_5xx(client: TestClient, keys: Keys, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    seen: dict[str, set[int]] = {}
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            # An admin key: every route is exercised past authentication, writes included.
            case.headers = {**(case.headers or {}), **keys.auth("admin")}
            # positive: responses also match the documented schemas (the contract)
            checks = [not_a_server_error]
            if mode == GenerationMode.POSITIVE:
                checks.append(response_schema_conformance)
            response = case.call_and_validate(checks=checks)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            run()
        except Unsatisfiable:  # nothing to negate (an operation without inputs)
            assert mode == GenerationMode.NEGATIVE
    assert all(code < 500 for codes in seen.values() for code in codes), seen
    if mode == GenerationMode.POSITIVE:
        assert len(seen) == len(operations)
    else:  # some negated inputs are still valid once serialised; none may cause a 5xx
        assert len(seen) >= 8
        assert any(400 <= code < 500 for codes in seen.values() for code in codes), seen
