"""The event/catalog/user store interface, its result types and backend-independent statistics.

A store holds three tables: behaviour events (deduplicated by `Event.dedup_key()`), the catalog
(`Item`, upserted by id) and users (`User`, upserted by id). Backends (`SQLiteStore`,
`PostgresStore`) are opened by URL with `shoprec.storage.open_store`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from shoprec.types import Event, Item, User

EVENT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "event_type",
    "timestamp",
    "value",
    "session_id",
    "event_id",
    "context",
)
"""Columns of `Store.events_frame()`, in order."""

ITEM_COLUMNS: tuple[str, ...] = (
    "item_id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "image",
    "stock",
    "attributes",
    "created_at",
    "active",
)
"""Columns of `Store.items_frame()`: every `Item` field, in declaration order."""

USER_COLUMNS: tuple[str, ...] = ("user_id", "attributes")


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of `Store.add_events`: `inserted + duplicates == len(events)`."""

    inserted: int
    duplicates: int


class Store(ABC):
    """Events, catalog and users behind one interface.

    Every method is safe to call from several threads of one process (backends serialise
    access to their connection). Use as a context manager, or call `close()`.
    """

    url: str

    # --- writes -------------------------------------------------------------------------
    @abstractmethod
    def add_events(self, events: Sequence[Event]) -> AddResult:
        """Store events once each by `Event.dedup_key()`.

        Repeats inside `events` and events already stored both count as duplicates, so
        adding the same batch twice inserts nothing the second time.
        """

    @abstractmethod
    def upsert_items(self, items: Sequence[Item]) -> int:
        """Insert or overwrite catalog entries by `item_id` (the last of repeated ids wins).

        Returns the number of distinct items written.
        """

    @abstractmethod
    def upsert_users(self, users: Sequence[User]) -> int:
        """Insert or overwrite users by `user_id` (the last of repeated ids wins)."""

    @abstractmethod
    def delete_user(self, user_id: str) -> dict[str, int]:
        """Remove everything stored about one user; returns rows removed per table."""

    @abstractmethod
    def purge_events_before(self, ts: float) -> int:
        """Retention: delete events with `timestamp < ts`; returns how many."""

    # --- reads --------------------------------------------------------------------------
    @abstractmethod
    def events_frame(self, since: float | None = None) -> pd.DataFrame:
        """All events (or those with `timestamp >= since`), ordered by time.

        Columns are `EVENT_COLUMNS`; `context` holds dicts (or None).
        """

    @abstractmethod
    def items_frame(self) -> pd.DataFrame:
        """The catalog, ordered by `item_id`; columns are `ITEM_COLUMNS`."""

    @abstractmethod
    def users_frame(self) -> pd.DataFrame:
        """Users, ordered by `user_id`; columns are `USER_COLUMNS`."""

    @abstractmethod
    def get_items(self, ids: Iterable[str]) -> dict[str, Item]:
        """Catalog entries for the given ids; unknown ids are absent from the result."""

    @abstractmethod
    def user_events(self, user_id: str, limit: int = 50) -> list[Event]:
        """The user's latest `limit` events, oldest first."""

    def user_item_history(self, user_id: str, limit: int = 50) -> list[tuple[str, str, float]]:
        """(item_id, event_type, timestamp) of the user's latest `limit` events that name an
        item, oldest first: what a recommendation request reads, without building `Event`s.
        The same events as `user_events` (less those without an item); stores override it
        with a narrower query."""
        return [
            (str(e.item_id), str(e.event_type), float(e.timestamp))
            for e in self.user_events(user_id, limit)
            if e.item_id
        ]

    @abstractmethod
    def count_events(self) -> int:
        """Number of stored events."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Summary figures; see `summarise` for the keys."""

    # --- lifecycle ----------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release the connection. Idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal, towards 1: all on one).

    Parameters
    ----------
    counts : np.ndarray, shape (n,)
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float((2.0 * (ranks * x).sum()) / (n * x.sum()) - (n + 1.0) / n)


def summarise(
    *,
    events_by_type: dict[str, int],
    item_counts: np.ndarray,
    user_counts: np.ndarray,
    n_pairs: int,
    catalog_items: int,
    user_records: int,
    first_ts: float | None,
    last_ts: float | None,
) -> dict[str, Any]:
    """Build the `Store.stats()` dictionary from per-item and per-user event counts.

    Parameters
    ----------
    events_by_type : dict
        Event count per event type.
    item_counts : np.ndarray, shape (n_items,)
        Events per item that has at least one event (events without an item excluded).
    user_counts : np.ndarray, shape (n_users,)
        Events per user that has at least one event.
    n_pairs : int
        Distinct (user, item) pairs among events with an item.
    catalog_items, user_records : int
        Rows in the catalog and user tables.
    first_ts, last_ts : float or None
        Time span of the events.
    """
    n_users = int(user_counts.size)
    n_items = int(item_counts.size)
    total = int(sum(events_by_type.values()))
    cells = n_users * n_items
    sorted_items = np.sort(item_counts)[::-1]
    top = max(1, int(np.ceil(0.2 * n_items))) if n_items else 0
    item_events = float(sorted_items.sum())
    return {
        "events": total,
        "events_by_type": dict(sorted(events_by_type.items())),
        "users": n_users,
        "items": n_items,
        "catalog_items": int(catalog_items),
        "user_records": int(user_records),
        "user_item_pairs": int(n_pairs),
        "sparsity": (1.0 - n_pairs / cells) if cells else 1.0,
        "events_per_user_median": float(np.median(user_counts)) if n_users else 0.0,
        "events_per_item_median": float(np.median(item_counts)) if n_items else 0.0,
        "top20_items_event_share": float(sorted_items[:top].sum() / item_events)
        if item_events
        else 0.0,
        "single_event_item_share": float((item_counts == 1).mean()) if n_items else 0.0,
        "item_gini": gini(item_counts),
        "first_timestamp": first_ts,
        "last_timestamp": last_ts,
    }
