"""No secret and no raw user id in any log line (logs captured at DEBUG from every logger)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shoprec.cli.serve_commands import uvicorn_options
from tests.unit.serving.conftest import Keys

USER = "alice.private-4711"


def test_no_secret_or_raw_user_id_in_logs(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    event = {"user_id": USER, "item_id": "i00", "event_type": "view", "timestamp": 1_767_300_000}
    assert client.post("/v1/events", json=[event], headers=keys.auth("write")).status_code == 200
    assert (
        client.post(
            "/v1/events", json=[{**event, "event_type": "x"}], headers=keys.auth("write")
        ).status_code
        == 200
    )
    assert client.get("/v1/recommendations", params={"user_id": USER}).status_code == 200
    assert client.get(f"/v1/users/{USER}/history", headers=keys.auth("read")).status_code == 200
    assert (
        client.get(
            "/v1/recommendations",
            params={"user_id": USER},
            headers={"Authorization": "Bearer " + keys.read + "x"},
        ).status_code
        == 401
    )
    assert client.post("/v1/events", json=[event], headers=keys.auth("read")).status_code == 403
    # a server-side failure whose message quotes the id must not carry it into the log
    served = client.app.state.service.models.get()

    def broken(request: Any) -> Any:
        raise RuntimeError(f"cannot rank for {request.user_id}")

    monkeypatch.setattr(served.pipeline, "recommend", broken)
    r = client.get("/v1/recommendations", params={"user_id": USER, "k": 3})
    assert r.status_code == 500 and USER not in r.text
    assert client.delete(f"/v1/users/{USER}", headers=keys.auth("admin")).status_code == 200

    # the test's own HTTP client logs its URLs; everything else is the service's
    client_side = {"httpx", "httpx2", "httpcore"}
    records = [rec for rec in caplog.records if rec.name.split(".")[0] not in client_side]
    lines = [rec.getMessage() + "\n" + (rec.exc_text or "") for rec in records]
    assert any("GET /v1/recommendations 200" in line for line in lines)  # the access log works
    assert any("unhandled RuntimeError on /v1/recommendations" in line for line in lines)
    for line in lines:
        assert USER not in line
        for key in (keys.read, keys.write, keys.admin):
            assert key not in line and key[4:20] not in line


def test_uvicorn_access_log_is_off() -> None:
    # uvicorn's own access log prints paths and query strings (user ids): the CLI turns it off
    opts = uvicorn_options("127.0.0.1", 8000)
    assert opts["access_log"] is False and opts["host"] == "127.0.0.1"
