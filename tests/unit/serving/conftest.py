"""Fixtures for the service tests: a real pipeline on the known-answer shop, a SQLite store,
in-process online state, and API keys of each scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shoprec.serving.app import create_app
from shoprec.serving.auth import hash_key, mint_key
from shoprec.serving.settings import ApiKeySpec, ServingSettings
from shoprec.storage import open_online_state, open_store
from tests.unit.serving.shop import fill_store, load_shop_pipeline


@dataclass(frozen=True)
class Keys:
    read: str
    write: str
    admin: str

    def specs(self) -> tuple[ApiKeySpec, ...]:
        return (
            ApiKeySpec(hash_key(self.read), ("read",), "reader"),
            ApiKeySpec(hash_key(self.write), ("write",), "writer"),
            ApiKeySpec(hash_key(self.admin), ("admin",), "admin"),
        )

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, scope)}"}


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(mint_key(), mint_key(), mint_key())


@pytest.fixture
def make_client(tmp_path: Path, keys: Keys) -> Iterator[Callable[..., TestClient]]:
    """Build a started app (lifespan run) with settings overrides; closed at teardown."""
    opened: list[Any] = []

    def factory(pipeline: Any = None, fill: bool = True, **overrides: Any) -> TestClient:
        n = len(opened)
        store = open_store(f"sqlite:///{tmp_path}/store{n}.db")
        if fill:
            fill_store(store)
        online = open_online_state("memory://")
        fields: dict[str, Any] = {"api_keys": keys.specs(), "rate_limit_per_s": 0.0}
        fields.update(overrides)
        settings = ServingSettings(**fields)
        app = create_app(
            settings,
            store=store,
            online=online,
            pipeline=load_shop_pipeline() if pipeline is None else pipeline,
        )
        client = TestClient(app)
        client.__enter__()
        opened.append((client, store, online))
        return client

    yield factory
    for client, store, online in opened:
        client.__exit__(None, None, None)
        online.close()
        store.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
