"""GET /v1/recommendations: a shopper's list, with reasons, reflecting their latest events.

The route is declared the FastAPI way (its OpenAPI schema, validation and errors come from
the signature below). `FastRecommendations` answers the common, plainly valid request
(`user_id` and optionally `k`, nothing else) without FastAPI's dependency injection and
parameter validation, which cost about as much CPU as the rest of the request outside the
pipeline; anything else (another parameter, a doubtful value) goes to the declared route, so
errors keep the one shape and wording.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler

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

PATH = "/v1/recommendations"
K_MAX = 1000  # the declared bound of `k` (le=1000)
USER_ID_MAX = 256


@router.get(
    PATH,
    response_model=RecommendationsOut,
    dependencies=[Depends(require("read"))],
    responses={503: {"description": "No model loaded yet"}},
)
async def recommendations(
    user_id: Annotated[str, Query(min_length=1, max_length=USER_ID_MAX, description="The shopper")],
    k: Annotated[int, Query(ge=1, le=K_MAX, description="Number of items")] = 10,
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
    # async: the pipeline runs on the event loop, one request at a time per process (as it
    # would under `ServiceState`'s lock anyway), without a worker-thread round trip each
    check_k(state, k)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise field_error("query", "min_price", "must not exceed max_price")
    query = RecQuery(k, diversity, category, min_price, max_price)
    return _answer(state, user_id, query)


def _answer(state: ServiceState, user_id: str, query: RecQuery) -> Response:
    check_k(state, query.k)
    user = state.user_ids.to_stored(state.user_ids.checked(user_id))
    served, recs = state.recommend(user, query)
    return json_response(
        {"user_id": user_id, "items": recommendation_dicts(recs), "model_version": served.version}
    )


_K = re.compile(r"[1-9][0-9]{0,3}")


def plain_query(raw: bytes) -> tuple[str, int] | None:
    """`user_id` and `k` of a query string that holds only those two, each once, with values
    the declared route accepts as they are (k plain decimal digits within 1..1000); None for
    anything else, which the declared route then validates."""
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    user_id: str | None = None
    k = 10
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            return None
        seen.add(name)
        if name == "user_id":
            if not 1 <= len(value) <= USER_ID_MAX:
                return None
            user_id = value
        elif name == "k":
            if not _K.fullmatch(value) or int(value) > K_MAX:
                return None
            k = int(value)
        else:
            return None
    return (user_id, k) if user_id is not None else None


class FastRecommendations:
    """ASGI middleware: answers a plain `GET /v1/recommendations` (see `plain_query`) with
    the same checks, pipeline call and response as the declared route (auth through
    `AccessControl.authorise`, `check_k`, the id seam, `ServiceState.recommend`), and hands
    every other request on unchanged. HTTP errors it raises are rendered by FastAPI's own
    handler; the matched route is recorded for the metrics' route label."""

    def __init__(self, app: Any, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.route: Any = None

    def _route(self) -> Any:
        if self.route is None:
            self.route = next(
                r
                for r in router.routes
                if getattr(r, "path", None) == PATH and "GET" in getattr(r, "methods", ())
            )
        return self.route

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        parsed = plain_query(scope.get("query_string", b""))
        state = getattr(self.fastapi_app.state, "service", None)
        if parsed is None or state is None or state.models.current is None:
            await self.app(scope, receive, send)  # the declared route validates and answers
            return
        scope["route"] = self._route()
        request = Request(scope, receive, send)
        try:
            request.state.principal = state.access.authorise(request, "read")
            response = _answer(state, parsed[0], RecQuery(parsed[1]))
        except HTTPException as exc:
            response = await http_exception_handler(request, exc)
        await response(scope, receive, send)
