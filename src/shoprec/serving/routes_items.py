"""Items: similar items, catalog lookups and catalog changes (effective at once)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response

from shoprec.data.schema import parse_item
from shoprec.serving.auth import require
from shoprec.serving.deps import (
    AUTH_RESPONSES,
    check_k,
    json_response,
    recommendation_dicts,
    service,
)
from shoprec.serving.identity import field_error
from shoprec.serving.routes_events import reason_of
from shoprec.serving.schemas import ITEM_EXAMPLE, ItemOut, Rejection, SimilarOut, WriteOut
from shoprec.serving.state import ServiceState
from shoprec.types import Item, RecordError

router = APIRouter(tags=["items"], responses=AUTH_RESPONSES)

ItemId = Annotated[str, Path(min_length=1, max_length=256, description="The shop's item id")]
NOT_FOUND = {404: {"description": "Unknown item"}}


def _not_found(name: str = "item_id") -> HTTPException:
    return HTTPException(
        404, detail=[{"loc": ["path", name], "msg": "unknown item", "type": "not_found"}]
    )


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarOut,
    dependencies=[Depends(require("read"))],
    responses=NOT_FOUND,
)
def similar(
    item_id: ItemId,
    k: Annotated[int, Query(ge=1, le=1000)] = 10,
    state: ServiceState = Depends(service),
) -> Response:
    """Items like `item_id` (out-of-stock and inactive items never appear)."""
    check_k(state, k)
    served = state.models.get()
    try:
        recs = served.pipeline.similar_items(item_id, k)
    except KeyError:
        raise _not_found() from None
    payload = {
        "item_id": item_id,
        "items": recommendation_dicts(recs),
        "model_version": served.version,
    }
    return json_response(payload)


@router.get("/v1/items", response_model=list[ItemOut], dependencies=[Depends(require("read"))])
def get_items(
    ids: Annotated[str, Query(min_length=1, max_length=20_000, description="Comma-separated ids")],
    state: ServiceState = Depends(service),
) -> list[dict[str, Any]]:
    """Catalog entries for the given ids, in the order asked (unknown ids are left out)."""
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if len(wanted) > state.settings.max_k:
        raise field_error("query", "ids", f"at most {state.settings.max_k} ids")
    found = state.store.get_items(wanted)
    return [dataclasses.asdict(found[i]) for i in wanted if i in found]


@router.post(
    "/v1/items",
    response_model=WriteOut,
    dependencies=[Depends(require("write"))],
)
def post_items(
    items: Annotated[
        list[Any] | dict[str, Any],
        Body(
            description="A JSON list of catalog entries (or one entry)",
            openapi_examples={"one item": {"value": [ITEM_EXAMPLE]}},
        ),
    ],
    state: ServiceState = Depends(service),
) -> WriteOut:
    """Insert or replace catalog entries; a new item is known at once, stock 0 hides one."""
    if isinstance(items, dict):
        items = [items]
    if len(items) > state.settings.max_events_per_request:
        raise field_error(
            "body",
            "items",
            f"at most {state.settings.max_events_per_request} items per request",
            status=413,
        )
    valid: list[Item] = []
    rejected: list[Rejection] = []
    for i, raw in enumerate(items):
        try:
            valid.append(parse_item(raw, "api", i))
        except RecordError as err:
            rejected.append(Rejection(index=i, reason=reason_of(err), field=err.field))
    if valid:
        state.upsert_items(valid)
    return WriteOut(accepted=len(valid), rejected=rejected)


@router.put(
    "/v1/items/{item_id}",
    response_model=ItemOut,
    dependencies=[Depends(require("write"))],
)
def put_item(
    item_id: ItemId,
    fields: Annotated[
        dict[str, Any],
        Body(
            description="Fields to set; the others keep their stored values",
            openapi_examples={"out of stock": {"value": {"stock": 0}}},
        ),
    ],
    state: ServiceState = Depends(service),
) -> dict[str, Any]:
    """Set fields of one item (creating it when new), effective at once in every list."""
    if "item_id" in fields and str(fields["item_id"]) != item_id:
        raise field_error("body", "item_id", "differs from the item id in the path")
    stored = state.store.get_items([item_id]).get(item_id)
    raw = dataclasses.asdict(stored) if stored is not None else {}
    raw.update(fields)
    raw["item_id"] = item_id
    try:
        item = parse_item(raw, "api", 0)
    except RecordError as err:
        raise field_error("body", err.field or "body", reason_of(err)) from None
    state.upsert_items([item])
    return dataclasses.asdict(item)
