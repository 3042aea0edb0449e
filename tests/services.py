"""The real servers tests talk to, and one rule for when they are down.

A test that needs PostgreSQL or Redis calls `require_pg()` / `require_redis()`: when the server
is unreachable the test is skipped with a loud reason, unless SHOPREC_REQUIRE_SERVICES=1 (set by
`.ci/run`), which turns the skip into a failure so CI never passes by skipping.
"""

from __future__ import annotations

import functools
import os

import pytest

PG_URL = "postgresql://127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


@functools.cache
def unreachable(service: str) -> str | None:
    """Why `service` ("postgresql" or "redis") cannot be reached, or None when it answers."""
    try:
        if service == "postgresql":
            import psycopg

            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        else:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


def _require(service: str, url: str, what: str) -> None:
    why = unreachable(service)
    if why is None:
        return
    msg = f"{service} at {url} UNREACHABLE, {what} NOT run on it: {why}"
    if os.environ.get("SHOPREC_REQUIRE_SERVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def require_pg(what: str) -> None:
    _require("postgresql", PG_URL, what)


def require_redis(what: str) -> None:
    _require("redis", REDIS_URL, what)
