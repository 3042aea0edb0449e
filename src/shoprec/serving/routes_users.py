"""Users: a shopper's merged history (for the playground) and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from shoprec.serving.auth import require
from shoprec.serving.deps import AUTH_RESPONSES, service
from shoprec.serving.schemas import DeletedOut, HistoryOut
from shoprec.serving.state import ServiceState

router = APIRouter(tags=["users"], responses=AUTH_RESPONSES)

UserId = Annotated[str, Path(min_length=1, max_length=256, description="The shop's user id")]


@router.get(
    "/v1/users/{user_id}/history",
    response_model=HistoryOut,
    dependencies=[Depends(require("read", keyed=True))],
)
def history(
    user_id: UserId,
    n: Annotated[int, Query(ge=1, le=1000)] = 20,
    state: ServiceState = Depends(service),
) -> dict[str, Any]:
    """The events the pipeline sees for this shopper, latest first, with item titles.

    Needs a key with the `read` scope even when reads are open: a history is personal data.
    """
    user = state.user_ids.to_stored(state.user_ids.checked(user_id, "path"))
    events = state.history(user)[::-1][:n]
    items = state.store.get_items({e.item_id for e in events if e.item_id})
    out = []
    for e in events:
        it = items.get(e.item_id) if e.item_id else None
        out.append(
            {
                "item_id": e.item_id,
                "event_type": e.event_type,
                "timestamp": e.timestamp,
                "title": it.title if it else "",
                "category": it.category if it else "",
            }
        )
    return {"user_id": user_id, "events": out}


@router.delete(
    "/v1/users/{user_id}",
    response_model=DeletedOut,
    dependencies=[Depends(require("admin"))],
)
def delete_user(user_id: UserId, state: ServiceState = Depends(service)) -> dict[str, Any]:
    """Erase a shopper: events, profile, online state and cached results, at once."""
    user = state.user_ids.to_stored(state.user_ids.checked(user_id, "path"))
    removed = state.forget_user(user)
    return {"user_id": user_id, "removed": removed}
