"""Small FastAPI dependencies and helpers shared by the routers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import Request

from shoprec.serving.identity import field_error
from shoprec.serving.state import ServiceState

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The API key lacks the scope"},
    413: {"description": "Request body too large"},
    429: {"description": "Rate limit exceeded (see Retry-After)"},
}


def service(request: Request) -> ServiceState:
    """The app's `ServiceState` (built in the lifespan)."""
    return request.app.state.service


def check_k(state: ServiceState, k: int, name: str = "k") -> int:
    """`k` within the service's cap; 422 naming the field otherwise."""
    if k > state.settings.max_k:
        raise field_error("query", name, f"must be at most {state.settings.max_k}")
    return k


def jsonable(value: Any) -> Any:
    """Plain-JSON copy of an explanation (numpy scalars and arrays become Python values)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, str | bool | int | float) or value is None:
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return None
        return value
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Sequence):
        return [jsonable(v) for v in value]
    return str(value)


def recommendation_dicts(recs: Sequence[Any]) -> list[dict[str, Any]]:
    """Pipeline `Recommendation`s as response dicts."""
    return [
        {
            "item_id": str(r.item_id),
            "score": _finite(r.score),
            "explanation": jsonable(r.explanation or {}),
        }
        for r in recs
    ]


def _finite(x: Any) -> float:
    f = float(x)
    return f if np.isfinite(f) else 0.0
