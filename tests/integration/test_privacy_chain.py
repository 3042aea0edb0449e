"""Privacy across the whole chain: ingest -> train -> serve -> feedback -> erase -> retrain.

The shop's raw user ids and the PII in its events and user records must never reach a store
(SQLite file, PostgreSQL rows), the online state (Redis keys and values), a log line, a metric
or an artifact; after `DELETE /v1/users/{id}` and retraining, the erased shopper's pseudonym
is gone from all of them too, and the artifacts record the erasure.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoprec.config import load_config
from shoprec.data.pseudonymize import KeyRing, Pseudonymizer
from shoprec.pipeline.build import train_from_store
from shoprec.serving.app import create_app
from shoprec.serving.settings import ServingSettings
from shoprec.storage import open_store
from shoprec.storage.artifacts import read_manifest
from shoprec.storage.erasure import ErasureLog, pending_erasures
from shoprec.storage.ingest import ingest
from tests.services import PG_URL, REDIS_URL, require_pg, require_redis, unreachable
from tests.unit.serving.shop import events_frame, items_frame

SECRET = "chain-test-secret-0123456789"
PII = ["jane.doe@example.com", "+44 20 7946 0958", "203.0.113.77", "12 Baker Street", "Jane Marple"]


def raw(u: str) -> str:
    return f"shopper-raw-{u}"  # distinctive, so a substring scan has no false hits


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    require_pg("privacy chain")
    schema = f"privacy_chain_{uuid.uuid4().hex[:8]}"
    yield f"{PG_URL}?schema={schema}"
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def online_url() -> Iterator[str]:
    if unreachable("redis") and os.environ.get("SHOPREC_REQUIRE_SERVICES") != "1":
        yield "memory://"  # the chain still runs; only the Redis scan is lost
        return
    require_redis("privacy chain")
    prefix = f"shoprec_privacy_test:{uuid.uuid4().hex[:8]}:"
    yield f"{REDIS_URL}?prefix={prefix}"
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=prefix + "*"):
        r.delete(key)


def store_dump(url: str) -> bytes:
    """Everything the store holds, as bytes: the SQLite files or every PostgreSQL row."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg

    schema = url.split("schema=", 1)[1]
    out = []
    with psycopg.connect(PG_URL) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (t,) in tables:
            out.append(repr(conn.execute(f'SELECT * FROM "{schema}"."{t}"').fetchall()))
    return "\n".join(out).encode()


def redis_dump(url: str) -> bytes:
    if not url.startswith("redis"):
        return b""
    import redis

    prefix = url.split("prefix=", 1)[1]
    r = redis.Redis.from_url(REDIS_URL)
    out = []
    for key in r.scan_iter(match=prefix + "*"):
        out.append(key)
        kind = r.type(key)
        if kind == b"list":
            out.extend(r.lrange(key, 0, -1))
        elif kind == b"string":
            out.append(r.get(key) or b"")
        elif kind == b"hash":
            out.extend(b"%s=%s" % kv for kv in r.hgetall(key).items())
        elif kind == b"zset":
            out.extend(r.zrange(key, 0, -1))
        elif kind == b"set":
            out.extend(r.smembers(key))
    return b"\n".join(out)


def files_dump(root: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def leaks(blob: bytes, needles: list[str]) -> list[str]:
    """Needles found in `blob` as UTF-8 or as UTF-32 (numpy string arrays in .npz files)."""
    return [n for n in needles if n.encode() in blob or n.encode("utf-32-le") in blob]


def _ingest(store_url: str, boundary: Pseudonymizer) -> None:
    events = events_frame()
    events["user_id"] = events["user_id"].map(raw)
    recs = []
    for i, row in enumerate(events.to_dict("records")):
        if i % 5 == 0:  # some events carry PII in their context
            row["context"] = {
                "email": PII[0],
                "note": f"call {PII[1]}",
                "client": PII[2],
                "ship_to": PII[3],
                "page": "pdp",
            }
        if i % 7 == 0:
            row["session_id"] = row["user_id"] + "-session"
            row["event_id"] = row["user_id"] + f"-evt-{i}"
        recs.append(("events.csv", i + 1, row))
    users = [
        (
            "users.csv",
            1,
            {"user_id": raw("u00"), "name": PII[4], "email": PII[0], "age_band": "30-39"},
        )
    ]
    items = [("items.csv", i + 1, r) for i, r in enumerate(items_frame().to_dict("records"))]
    with open_store(store_url) as st:
        assert ingest(items, st, kind="items").accepted == len(items)
        assert ingest(users, st, kind="users", boundary=boundary).accepted == 1
        assert ingest(recs, st, kind="events", boundary=boundary).accepted == len(recs)


@pytest.mark.slow
def test_no_raw_id_or_pii_anywhere_and_erasure_survives_retraining(
    tmp_path: Path, store_url: str, online_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = tmp_path / "pseudonym.keys"
    keys.write_text(f"k1 {SECRET}\n")
    boundary = Pseudonymizer(KeyRing.from_file(keys), "drop")
    erasures = tmp_path / "erasures.jsonl"
    config = tmp_path / "shoprec.toml"
    config.write_text(
        f'[pipeline]\nranker = "weighted"\nexploration_slots = 0\n\n'
        f'[privacy]\nerasure_log = "{erasures}"\n'
    )
    artifacts = tmp_path / "artifacts"

    _ingest(store_url, boundary)
    first, _ = train_from_store(store_url, artifacts, load_config(config))

    settings = ServingSettings(
        artifacts=str(artifacts),
        store_url=store_url,
        online_url=online_url,
        pseudonym_keys_file=str(keys),
        erasure_log=str(erasures),
        open_writes=True,
        reload_poll_s=0,
    )
    feedback = {
        "user_id": raw("u01"),
        "item_id": "i00",
        "event_type": "view",
        "timestamp": 1_767_300_000.0,
        "session_id": "sess-" + raw("u01"),
        "context": {"email": PII[0], "ip": PII[2], "page": "home"},
    }
    with TestClient(create_app(settings)) as client:
        assert (
            client.get("/v1/recommendations", params={"user_id": raw("u01"), "k": 5}).status_code
            == 200
        )
        r = client.post("/v1/events", json=[feedback, {**feedback, "user_id": raw("new")}])
        assert r.status_code == 200 and r.json()["accepted"] == 2
        recs = client.get("/v1/recommendations", params={"user_id": raw("u01"), "k": 5})
        assert recs.json()["user_id"] == raw("u01")  # the caller's id is echoed back
        history = client.get(f"/v1/users/{raw('u01')}/history").json()["events"]
        assert history[0]["item_id"] == "i00"
        metrics = client.get("/metrics").text

        users = [raw(f"u{u:02d}") for u in range(40)] + [raw("new")]
        # the service's own log lines (the test client's httpx logger prints its request URLs)
        log_text = "\n".join(
            r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
        )
        places = {
            "store": store_dump(store_url),
            "online state": redis_dump(online_url),
            "artifact": files_dump(artifacts),
            "logs": log_text.encode(),
            "metrics": metrics.encode(),
        }
        for place, blob in places.items():
            assert leaks(blob, users + PII) == [], place
        assert boundary.user_id(raw("u01")).encode() in places["store"]  # it is stored...
        assert boundary.user_id(raw("u01")).encode() in places["artifact"]  # ...and trained

        # erasure: through the service, then retraining
        gone = boundary.user_id(raw("u01"))
        r = client.delete(f"/v1/users/{raw('u01')}")
        assert r.status_code == 200
        assert r.json()["removed"]["events"] == 8  # 7 ingested views + 1 feedback event
    (record,) = ErasureLog(erasures).records()
    assert record.pseudonym == gone and record.artifacts_marked == [str(first)]
    assert pending_erasures(first) == [record.erasure_id]
    assert raw("u01") not in erasures.read_text()

    second, _ = train_from_store(store_url, artifacts, load_config(config))
    _, manifest = read_manifest(second)
    assert manifest["erasures"] == [record.erasure_id]
    assert gone not in (second / "users.json").read_text()
    for place, blob in {
        "store": store_dump(store_url),
        "online state": redis_dump(online_url),
        "new artifact": files_dump(second),
    }.items():
        assert leaks(blob, [gone]) == [], place
    assert boundary.user_id(raw("u02")).encode() in files_dump(second)  # others stay
