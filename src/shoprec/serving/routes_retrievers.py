"""GET /v1/retrievers/{name}: one recall source alone, for debugging (gorse's recall endpoints)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from shoprec.serving.auth import require
from shoprec.serving.deps import AUTH_RESPONSES, check_k, json_response, service
from shoprec.serving.schemas import RetrieverOut
from shoprec.serving.state import RecQuery, ServiceState

router = APIRouter(tags=["debugging"], responses=AUTH_RESPONSES)


@router.get("/v1/retrievers", dependencies=[Depends(require("read"))])
def list_retrievers(state: ServiceState = Depends(service)) -> dict[str, Any]:
    """Names of the served pipeline's recall sources."""
    served = state.models.get()
    return {"retrievers": retriever_names(served.pipeline), "model_version": served.version}


@router.get(
    "/v1/retrievers/{name}",
    response_model=RetrieverOut,
    dependencies=[Depends(require("read"))],
    responses={404: {"description": "No such retriever"}},
)
def retriever(
    name: Annotated[str, Path(min_length=1, max_length=64)],
    user_id: Annotated[str, Query(min_length=1, max_length=256)],
    n: Annotated[int, Query(ge=1, le=1000)] = 20,
    state: ServiceState = Depends(service),
) -> Response:
    """The candidates one source produces for `user_id`, before ranking and rules."""
    check_k(state, n, "n")
    served = state.models.get()
    names = retriever_names(served.pipeline)
    if name not in names:
        raise HTTPException(
            404,
            detail=[
                {
                    "loc": ["path", "name"],
                    "msg": f"unknown retriever; known: {names}",
                    "type": "not_found",
                }
            ],
        )
    user = state.user_ids.to_stored(state.user_ids.checked(user_id))
    request = state.request(user, RecQuery(k=min(n, 1000)))
    found = served.pipeline.retrieve(name, request, n)  # rules applied: never a hidden item
    return json_response(
        {
            "retriever": name,
            "user_id": user_id,
            "items": candidate_dicts(found),
            "model_version": served.version,
        }
    )


def retriever_names(pipeline: Any) -> list[str]:
    """The served pipeline's recall source names."""
    return [str(n) for n in pipeline.sources]


def candidate_dicts(found: Any) -> list[dict[str, Any]]:
    """A retriever's `Recommendation`s as response dicts (explanation as evidence)."""
    return [
        {
            "item_id": str(r.item_id),
            "score": float(r.score),
            "evidence": r.explanation or {},
        }
        for r in found
    ]
