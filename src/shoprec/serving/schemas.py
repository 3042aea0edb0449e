"""Request and response bodies of the HTTP API (pydantic), apart from storage records.

The shapes are a contract other tools rely on; fields may be added, never renamed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecommendedItem(BaseModel):
    """One recommended item, with why it was chosen."""

    item_id: str
    score: float
    explanation: dict[str, Any] = Field(
        default_factory=dict,
        description="Sources that found the item, their evidence, and rules or knobs that moved it",
    )


class RecommendationsOut(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str


class SimilarOut(BaseModel):
    item_id: str
    items: list[RecommendedItem]
    model_version: str


class CandidateOut(BaseModel):
    """A candidate as one recall source produced it (before ranking and rules)."""

    item_id: str
    score: float
    evidence: dict[str, Any] = Field(default_factory=dict)


class RetrieverOut(BaseModel):
    retriever: str
    user_id: str
    items: list[CandidateOut]
    model_version: str


class Rejection(BaseModel):
    index: int = Field(description="0-based position in the posted list")
    reason: str = Field(description="Human-readable: the field and what is wrong with it")
    field: str = Field("", description="The offending field ('' when the whole record is bad)")


class WriteOut(BaseModel):
    """Outcome of posting a list of records: valid ones are kept, invalid ones are named."""

    accepted: int
    rejected: list[Rejection]
    duplicates: int = Field(0, description="Accepted events that were already stored")


class ItemOut(BaseModel):
    item_id: str
    title: str = ""
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    currency: str = ""
    image: str = ""
    stock: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: float | None = None
    active: bool = True


class HistoryEvent(BaseModel):
    item_id: str | None
    event_type: str
    timestamp: float
    title: str = ""
    category: str = ""


class HistoryOut(BaseModel):
    user_id: str
    events: list[HistoryEvent] = Field(description="Latest first: stored and online events merged")


class DeletedOut(BaseModel):
    user_id: str
    removed: dict[str, int] = Field(description="What was removed, per place")


class ReloadOut(BaseModel):
    model_version: str
    path: str
    changed: bool


class HealthOut(BaseModel):
    status: str
    model_version: str | None
    artifact_loaded_at: float | None
    store: str
    online_state: str


# Example bodies shown in /docs (the routes accept any JSON values and validate each record
# themselves, so one bad record never hides its valid neighbours).
EVENT_EXAMPLE: dict[str, Any] = {
    "user_id": "u42",
    "item_id": "i7",
    "event_type": "view",
    "timestamp": "2026-05-01T12:00:00Z",
}
ITEM_EXAMPLE: dict[str, Any] = {
    "item_id": "i7",
    "title": "Navy plain sneakers",
    "category": "Fashion > Shoes",
    "price": 59.0,
    "stock": 12,
}


class EventIn(BaseModel):
    """Documentation of one event (validated by `shoprec.data.schema.parse_event`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    user_id: str
    item_id: str | None = None
    event_type: str
    timestamp: float | str
    value: float | None = None
    session_id: str | None = None
    event_id: str | None = None
    context: dict[str, Any] | None = None
