"""Records that cross the package: events, items, users, and the error that names a bad record.

Everything here is plain data; nothing imports the rest of shoprec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "wishlist",
    "purchase",
    "rating",
    "search",
)
"""Event types a shop can send. `search` may come without an item."""


@dataclass(frozen=True, slots=True)
class Event:
    """One behaviour event, validated. `timestamp` is epoch seconds (UTC)."""

    user_id: str
    item_id: str | None
    event_type: str
    timestamp: float
    value: float | None = None
    session_id: str | None = None
    context: dict[str, Any] | None = None
    event_id: str | None = None

    def dedup_key(self) -> str:
        """Identity used for idempotent ingest: the event id, else the natural key."""
        if self.event_id:
            return "id:" + self.event_id
        return (
            f"nk:{self.user_id}\x1f{self.item_id or ''}\x1f{self.event_type}\x1f{self.timestamp!r}"
        )


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog entry. `category` is a path such as "Beauty > Skin > Serum"."""

    item_id: str
    title: str = ""
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    currency: str = ""
    image: str = ""
    stock: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    active: bool = True

    @property
    def available(self) -> bool:
        """An item can be recommended when it is active and not known to be out of stock."""
        return self.active and (self.stock is None or self.stock > 0)


@dataclass(frozen=True, slots=True)
class User:
    """A shopper, by (pseudonymous) id, with optional attributes (age band, country...)."""

    user_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


class RecordError(ValueError):
    """A record that cannot be accepted, with where it came from and why.

    Parameters
    ----------
    source : str
        File name or channel ("api", "events.csv").
    record : int
        1-based line or record number in that source.
    field : str
        The offending field ("" when the whole record is bad).
    reason : str
        Short machine-friendly reason ("missing", "unknown_event_type", ...).
    detail : str
        Human-readable explanation.
    """

    def __init__(self, source: str, record: int, field: str, reason: str, detail: str = ""):
        self.source = source
        self.record = record
        self.field = field
        self.reason = reason
        self.detail = detail
        where = f"{source}:{record}" if source else f"record {record}"
        msg = f"{where}: field '{field}': {reason}" if field else f"{where}: {reason}"
        super().__init__(msg + (f" ({detail})" if detail else ""))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "record": self.record,
            "field": self.field,
            "reason": self.reason,
            "detail": self.detail,
        }
