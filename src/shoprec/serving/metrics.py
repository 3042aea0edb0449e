"""Prometheus metrics, the access log and the request-size cap, as plain ASGI middleware.

Labels carry route *templates* (``/v1/items/{item_id}/similar``), methods and status codes,
never paths or query strings, so no user id or item id can reach a label or a log line.
Each app owns its registry, so several apps can live in one process (tests, benchmarks).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger("shoprec.serving.access")
log_errors = logging.getLogger("shoprec.serving.errors")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Scope = dict[str, Any]
Message = dict[str, Any]


class Metrics:
    """The service's collectors, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "shoprec_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "shoprec_http_request_duration_seconds",
            "Time to the end of the response",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "shoprec_events", "Events posted, by outcome", ["outcome"], registry=r
        )
        self.cache = Counter(
            "shoprec_rec_cache", "Recommendation cache lookups", ["outcome"], registry=r
        )
        self.reloads = Counter(
            "shoprec_artifact_loads", "Artifact loads, by outcome", ["outcome"], registry=r
        )
        self.purged = Counter(
            "shoprec_retention_purged_events", "Events deleted by the retention purge", registry=r
        )
        self.model = Gauge(
            "shoprec_model_info", "The artifact being served", ["version"], registry=r
        )

    def set_model(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version=version).set(1)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``unmatched`` (never the raw path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Counts and times every HTTP request, and writes one access-log line without ids."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Handled here, not re-raised: the server would log the exception's message, and
            # messages may quote data (ids). Log the type, the route and the stack only.
            stack = "".join(traceback.format_tb(exc.__traceback__))
            log_errors.error(
                "unhandled %s on %s\n%s", type(exc).__name__, route_label(scope), stack
            )
            if not status["started"]:
                status["code"] = 500
                await _send_json(send, 500, {"detail": "internal error"})
        finally:
            elapsed = time.perf_counter() - start
            route = route_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status["code"])).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                principal = getattr(scope.get("state", {}).get("principal"), "name", "-")
                log.info(
                    "%s %s %d %.1fms key=%s",
                    method,
                    route,
                    status["code"],
                    elapsed * 1e3,
                    principal,
                )


class BodySizeLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, by header and while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        received = 0
        started = {"response": False}

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # an HTTPException passes FastAPI's body parsing unchanged (others become 400)
                    raise _BodyTooLarge(413, detail=self._detail())
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started["response"]:
                await self._reject(send)

    def _detail(self) -> list[dict[str, Any]]:
        msg = f"request body larger than {self.max_bytes} bytes"
        return [{"loc": ["body"], "msg": msg, "type": "too_large"}]

    async def _reject(self, send: Any) -> None:
        await _send_json(send, 413, {"detail": self._detail()})


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(HTTPException):
    """Raised inside `receive` when a streamed body passes the cap."""
