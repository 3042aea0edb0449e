"""Small FastAPI dependencies and helpers shared by the routers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request, Response

from shoprec.serving.identity import field_error
from shoprec.serving.state import ServiceState

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The API key lacks the scope"},
    413: {"description": "Request body too large"},
    429: {"description": "Rate limit exceeded (see Retry-After)"},
}


async def service(request: Request) -> ServiceState:
    """The app's `ServiceState` (built in the lifespan). Async: a plain attribute read needs
    no worker thread."""
    return request.app.state.service


def check_k(state: ServiceState, k: int, name: str = "k") -> int:
    """`k` within the service's cap; 422 naming the field otherwise."""
    if k > state.settings.max_k:
        raise field_error("query", name, f"must be at most {state.settings.max_k}")
    return k


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def json_response(payload: Any) -> Response:
    """A JSON response serialised by orjson (numpy values included, NaN as null).

    Hot routes return this directly: FastAPI then skips re-validating the payload against the
    response model (the model still documents the shape; the tests check it).
    """
    body = orjson.dumps(
        payload, default=_fallback, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return Response(body, media_type="application/json")


def recommendation_dicts(recs: Sequence[Any]) -> list[dict[str, Any]]:
    """Pipeline `Recommendation`s as response dicts."""
    return [
        {
            "item_id": str(r.item_id),
            "score": _finite(r.score),
            "explanation": r.explanation or {},
        }
        for r in recs
    ]


def _finite(x: Any) -> float:
    f = float(x)
    return f if math.isfinite(f) else 0.0
