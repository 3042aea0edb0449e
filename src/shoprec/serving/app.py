"""The FastAPI application factory: `create_app(settings)`.

Nothing is loaded at import time: stores, online state and the artifact are opened in the
`lifespan`, and tests build apps with their own settings (and may hand in their own store and
online state). One router per resource; see ``routes_*.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shoprec.serving import (
    routes_admin,
    routes_events,
    routes_items,
    routes_playground,
    routes_recommendations,
    routes_retrievers,
    routes_users,
)
from shoprec.serving.metrics import BodySizeLimitMiddleware, Metrics, ObservabilityMiddleware
from shoprec.serving.retention import RetentionPurger
from shoprec.serving.runtime import ModelHolder, NotReady, Served
from shoprec.serving.settings import ServingSettings
from shoprec.serving.state import ServiceState
from shoprec.storage.artifacts import ArtifactError
from shoprec.storage.base import Store
from shoprec.storage.online_state import OnlineState

log = logging.getLogger("shoprec.serving")

API_DESCRIPTION = """Product recommendations for a shop: personalised lists with reasons,
similar items, live feedback through events, catalog updates and erasure.

Write routes need an API key with the `write` scope, erasure and reloads `admin`
(`Authorization: Bearer KEY`); read routes are open unless the service requires `read` keys.
"""


def smoke_test(pipeline: Any) -> None:
    """A pipeline must answer a cold-start request before it is served."""
    from shoprec.pipeline.request import RecRequest

    pipeline.recommend(RecRequest(user_id=None, k=1))


def create_app(
    settings: ServingSettings | None = None,
    *,
    store: Store | None = None,
    online: OnlineState | None = None,
    pipeline: Any | None = None,
) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings : ServingSettings, optional
        Defaults to ``ServingSettings()``.
    store, online : optional
        Already-open store and online state to use instead of opening ``settings.store_url``
        and ``settings.online_url`` (the caller then closes them).
    pipeline : Pipeline, optional
        An in-memory pipeline to serve first (embedding, tests); ``settings.artifacts``, when
        set, still takes over at start and through its ``latest`` pointer.
    """
    settings = (settings or ServingSettings()).checked()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from shoprec.storage import open_online_state, open_store

        own_store = store is None
        own_online = online is None
        the_store = open_store(settings.store_url) if store is None else store
        the_online = open_online_state(settings.online_url) if online is None else online
        state_box: dict[str, ServiceState] = {}

        def on_swap(served: Served) -> None:
            metrics.reloads.labels("loaded").inc()
            metrics.set_model(served.version)
            if "state" in state_box:
                state_box["state"].cache.clear()

        models = ModelHolder(
            settings.artifacts,
            smoke=smoke_test,
            on_swap=on_swap,
            on_refused=lambda exc: metrics.reloads.labels("refused").inc(),
        )
        state = ServiceState(settings, the_store, the_online, models, metrics)
        state_box["state"] = state
        app.state.service = state
        app.state.access = state.access
        if pipeline is not None:
            models.serve(pipeline)
        purger = RetentionPurger(
            the_store,
            settings.retention_days,
            settings.retention_purge_s,
            settings.erasure_log,
            on_purged=metrics.purged.inc,
        )
        if settings.artifacts:
            # a service that cannot load its first artifact refuses to start (fail fast)
            await anyio.to_thread.run_sync(models.reload)
            models.start_watching(settings.reload_poll_s)
        purger.start()
        try:
            yield
        finally:
            models.stop_watching()
            purger.stop()
            if own_online:
                the_online.close()
            if own_store:
                the_store.close()

    app = FastAPI(
        title="shoprec",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    for module in (
        routes_recommendations,
        routes_items,
        routes_events,
        routes_users,
        routes_retrievers,
        routes_admin,
    ):
        app.include_router(module.router)
    if settings.playground:
        app.include_router(routes_playground.router)
    _install_error_handlers(app)
    # innermost first (each add wraps the previous): the lean path for plain
    # GET /v1/recommendations sits inside the size cap and the metrics
    app.add_middleware(routes_recommendations.FastRecommendations, fastapi_app=app)
    # observe everything, including requests refused for their size
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse({"detail": "no model loaded yet"}, status_code=503)

    @app.exception_handler(ArtifactError)
    async def artifact_error(request: Request, exc: ArtifactError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)


def app_from_env() -> FastAPI:
    """`create_app` with `ServingSettings.from_env()`: the factory each uvicorn worker calls
    when the service runs several worker processes (``shoprec serve --workers N``)."""
    return create_app(ServingSettings.from_env())
