"""POST /v1/events: behaviour events, validated one by one; valid ones are kept at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from shoprec.data.schema import parse_event
from shoprec.serving.auth import require
from shoprec.serving.deps import AUTH_RESPONSES, service
from shoprec.serving.identity import field_error
from shoprec.serving.schemas import EVENT_EXAMPLE, EventIn, Rejection, WriteOut
from shoprec.serving.state import ServiceState
from shoprec.types import Event, RecordError

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)

EVENTS_BODY = Body(
    description="A JSON list of events; each is validated on its own (see `EventIn`)",
    openapi_examples={"one view": {"value": [EVENT_EXAMPLE]}},
)


def reason_of(err: RecordError) -> str:
    """A readable reason that names the field: ``event_type: unknown_event_type (...)``."""
    head = f"{err.field}: {err.reason}" if err.field else err.reason
    return f"{head} ({err.detail})" if err.detail else head


@router.post(
    "/v1/events",
    response_model=WriteOut,
    dependencies=[Depends(require("write"))],
    openapi_extra={"x-event-schema": EventIn.model_json_schema()},
)
def post_events(
    events: Annotated[list[Any], EVENTS_BODY],
    state: ServiceState = Depends(service),
) -> WriteOut:
    """Validate and store events; they change the shopper's next recommendations at once.

    Valid events are written to the store before the response (durable once acknowledged)
    and appended to online state. Invalid ones are listed by index with the reason; they
    never cost their valid neighbours.
    """
    if len(events) > state.settings.max_events_per_request:
        raise field_error(
            "body",
            "events",
            f"at most {state.settings.max_events_per_request} events per request",
            status=413,
        )
    valid: list[Event] = []
    rejected: list[Rejection] = []
    for i, raw in enumerate(events):
        try:
            event = parse_event(raw, "api", i)
            valid.append(state.user_ids.event_to_stored(event))
        except RecordError as err:
            rejected.append(Rejection(index=i, reason=reason_of(err), field=err.field))
    if rejected:
        state.metrics.events.labels("rejected").inc(len(rejected))
    result = state.add_events(valid) if valid else None
    return WriteOut(
        accepted=len(valid), rejected=rejected, duplicates=result.duplicates if result else 0
    )
