"""What goes into and comes out of the pipeline: `RecRequest`, `Recommendation`, `Query`.

`RecRequest` and `Recommendation` speak the shop's external ids; `Query` is the same request
resolved into index space once, at the pipeline's boundary, and is what the stages receive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from shoprec.pipeline.candidates import first_positions


class HistoryEvent(NamedTuple):
    """One recent event of the shopper: item id, event type and epoch seconds."""

    item_id: str
    event_type: str = "view"
    timestamp: float = 0.0


def _as_history_event(raw: Any, pos: int) -> HistoryEvent:
    if isinstance(raw, HistoryEvent):
        return raw
    if isinstance(raw, str):
        return HistoryEvent(raw)
    if isinstance(raw, Mapping):
        if raw.get("item_id") is None:
            raise ValueError(f"history[{pos}]: missing item_id")
        return HistoryEvent(
            str(raw["item_id"]),
            str(raw.get("event_type") or "view"),
            float(raw.get("timestamp") or 0.0),
        )
    item_id = getattr(raw, "item_id", None)
    if item_id is not None:  # an Event record
        return HistoryEvent(str(item_id), str(raw.event_type), float(raw.timestamp))
    if isinstance(raw, tuple | list) and raw:
        return HistoryEvent(*(str(raw[0]), *raw[1:2], *map(float, raw[2:3])))
    raise ValueError(f"history[{pos}]: cannot read {raw!r} as an event")


@dataclass(frozen=True)
class RecRequest:
    """A recommendation request in external ids.

    Parameters
    ----------
    user_id : str or None
        The shopper; unknown or None gets the cold-start list, never an error.
    k : int
        Number of items wanted (0..1000).
    history : tuple of HistoryEvent
        The shopper's recent events, oldest first. Items may be given as plain ids, dicts,
        `(item_id, event_type, timestamp)` tuples or `shoprec.types.Event`. When empty, the
        pipeline uses the history it was trained with for a known user.
    diversity : float or None
        MMR knob in [0, 1]; None takes the pipeline's default.
    category : str or None
        Only items in this category path (or below it).
    min_price, max_price : float or None
        Price range (items without a price pass).
    context : mapping or None
        Free-form page context (page type, device...), available to the ranker's features.
    exclude_items : tuple of str
        Items the shopper hid or the page already shows.
    exclude_categories : tuple of str
        Category paths to leave out (and everything below them).
    """

    user_id: str | None = None
    k: int = 10
    history: tuple[HistoryEvent, ...] = ()
    diversity: float | None = None
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    context: Mapping[str, Any] | None = None
    exclude_items: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer):
            raise ValueError(f"k: must be an integer, got {self.k!r}")
        if not 0 <= int(self.k) <= 1000:
            raise ValueError(f"k: must be between 0 and 1000, got {self.k}")
        if self.diversity is not None:
            d = float(self.diversity)
            if not (0.0 <= d <= 1.0):  # also refuses NaN
                raise ValueError(f"diversity: must be between 0 and 1, got {self.diversity}")
            object.__setattr__(self, "diversity", d)
        for name in ("min_price", "max_price"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or math.isnan(float(v))):
                raise ValueError(f"{name}: must be a number, got {v!r}")
        if (
            self.min_price is not None
            and self.max_price is not None
            and float(self.min_price) > float(self.max_price)
        ):
            raise ValueError("min_price: must not exceed max_price")
        hist = self.history or ()
        if type(hist) is not tuple or not all(type(h) is HistoryEvent for h in hist):
            hist = tuple(_as_history_event(h, i) for i, h in enumerate(hist))
        object.__setattr__(self, "history", hist)
        for name in ("exclude_items", "exclude_categories"):
            v = getattr(self, name) or ()
            object.__setattr__(self, name, tuple(str(x) for x in v))


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: external id, score and a readable explanation.

    `explanation` has keys `sources` (list of str), `evidence` (list of str) and
    `adjustments` (list of str), plus `source_scores` / `source_ranks` (per source).
    """

    item_id: str
    score: float
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Query:
    """A `RecRequest` resolved to index space; what retrievers, rankers and re-rankers get.

    Attributes
    ----------
    request : RecRequest
    user : int
        User index, -1 when unknown.
    history : np.ndarray, shape (L,), int64
        Known item indices, oldest first (unknown item ids are dropped).
    history_types : list of str
        Event type of each history item ("" when not known, e.g. trained history).
    history_ts : np.ndarray, shape (L,)
    k : int
    diversity : float
        The knob in force for this request.
    excluded : np.ndarray, int64
        Item indices the rules remove for this shopper (bought, seen, hidden); sorted and
        unique (the rules search it by bisection).
    """

    request: RecRequest
    user: int
    history: np.ndarray
    history_types: list[str]
    history_ts: np.ndarray
    k: int
    diversity: float
    excluded: np.ndarray
    cold: bool = False

    def recent(self, n: int) -> np.ndarray:
        """The last `n` distinct history items, most recent first. Shape (<= n,)."""
        if len(self.history) == 0:
            return self.history
        memo = self.__dict__.setdefault("_recent", {})  # several retrievers ask per request
        hit = memo.get(n)
        if hit is None:
            rev = self.history[::-1]
            hit = memo[n] = rev[np.sort(first_positions(rev))][:n]
        return hit

    def event_type_of(self, item: int) -> str:
        """Latest event type the shopper had with `item` ("" when unknown)."""
        types = self.__dict__.get("_types")
        if types is None:  # built once per request: later events overwrite earlier ones
            types = dict(zip(self.history.tolist(), self.history_types, strict=False))
            self.__dict__["_types"] = types
        return types.get(int(item), "")
