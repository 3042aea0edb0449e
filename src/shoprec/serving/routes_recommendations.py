"""GET /v1/recommendations: a shopper's list, with reasons, reflecting their latest events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from shoprec.serving.auth import require
from shoprec.serving.deps import (
    AUTH_RESPONSES,
    check_k,
    json_response,
    recommendation_dicts,
    service,
)
from shoprec.serving.identity import field_error
from shoprec.serving.schemas import RecommendationsOut
from shoprec.serving.state import RecQuery, ServiceState

router = APIRouter(tags=["recommendations"], responses=AUTH_RESPONSES)


@router.get(
    "/v1/recommendations",
    response_model=RecommendationsOut,
    dependencies=[Depends(require("read"))],
    responses={503: {"description": "No model loaded yet"}},
)
def recommendations(
    user_id: Annotated[str, Query(min_length=1, max_length=256, description="The shopper")],
    k: Annotated[int, Query(ge=1, le=1000, description="Number of items")] = 10,
    diversity: Annotated[
        float | None, Query(ge=0.0, le=1.0, description="0: pure relevance, 1: most varied")
    ] = None,
    category: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Only this category path")
    ] = None,
    min_price: Annotated[float | None, Query(ge=0.0, allow_inf_nan=False)] = None,
    max_price: Annotated[float | None, Query(ge=0.0, allow_inf_nan=False)] = None,
    state: ServiceState = Depends(service),
) -> Response:
    """Top-k items for `user_id`. An unknown shopper gets cold-start items, not an error.

    The history used is the shopper's stored events merged with their online state, read
    on every request, so an event posted a moment ago already counts.
    """
    check_k(state, k)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise field_error("query", "min_price", "must not exceed max_price")
    user = state.user_ids.to_stored(state.user_ids.checked(user_id))
    query = RecQuery(k, diversity, category, min_price, max_price)
    served, recs = state.recommend(user, query)
    return json_response(
        {"user_id": user_id, "items": recommendation_dicts(recs), "model_version": served.version}
    )
