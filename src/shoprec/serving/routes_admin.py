"""Operations: health, Prometheus metrics, and swapping in a new artifact."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response

from shoprec.serving.auth import require
from shoprec.serving.deps import AUTH_RESPONSES, service
from shoprec.serving.schemas import HealthOut, ReloadOut
from shoprec.serving.state import ServiceState

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthOut)
async def health(state: ServiceState = Depends(service)) -> dict[str, Any]:
    """Liveness and what is being served (no data, no ids)."""
    served = state.models.current
    return {
        "status": "ok" if served is not None else "no_model",
        "model_version": served.version if served else None,
        "artifact_loaded_at": served.loaded_at if served else None,
        "store": type(state.store).__name__,
        "online_state": type(state.online).__name__,
    }


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition: request counts and latency by route template, cache, reloads."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


@router.post(
    "/v1/admin/reload",
    response_model=ReloadOut,
    dependencies=[Depends(require("admin"))],
    responses={
        **AUTH_RESPONSES,
        409: {"description": "The artifact was refused; the old one serves"},
    },
)
async def reload(
    version: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
            description="A version folder under the artifacts root; default: `latest`",
        ),
    ] = None,
    state: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Load an artifact in the background and swap it in atomically; a bad one is refused."""
    served, changed = await anyio.to_thread.run_sync(state.models.reload, version)
    return {"model_version": served.version, "path": served.path, "changed": changed}
