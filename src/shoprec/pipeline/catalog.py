"""`CatalogView`: the live, index-aligned view of the catalog that every rule reads.

Arrays are aligned to the item `IdMap` (row i describes item index i). Updates take effect at
once: an item whose stock drops to 0 or that is deactivated is unavailable for the very next
request, and a new item gets an index (after every trained one) and can be recommended by the
sources that do not need training (exploration, fallback, content).

Writers hold a lock; readers do not. Arrays are replaced, never resized in place, and grown
*before* the id map learns a new id, so a reader never sees an index beyond its arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from shoprec.data.idmap import IdMap
from shoprec.types import Item

_ARRAYS = ("available", "price", "category", "created_at", "popularity", "trend", "is_new")


def _field(row: Any, name: str, default: Any = None) -> Any:
    if isinstance(row, Mapping):
        v = row.get(name, default)
    else:
        v = getattr(row, name, default)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return default
    try:
        if pd.isna(v):
            return default
    except (TypeError, ValueError):
        pass
    return v


class CatalogView:
    """What the pipeline knows about each item, by index.

    Attributes
    ----------
    items : IdMap
    available : np.ndarray, shape (n,), bool
        Active, in stock and not removed.
    price : np.ndarray, shape (n,), float64 (NaN unknown)
    category : np.ndarray, shape (n,), int32
        Code into `categories` (code 0 is "", no category).
    created_at : np.ndarray, shape (n,), float64 (NaN unknown)
    popularity : np.ndarray, shape (n,), float64
        Interactions in the training data.
    trend : np.ndarray, shape (n,), float64
        Time-decayed popularity (the fallback order).
    is_new : np.ndarray, shape (n,), bool
        Items that exploration may try (recent, or with almost no interactions).
    now : float
        Reference time (latest training event).
    """

    def __init__(self, items: IdMap, now: float = 0.0):
        n = len(items)
        self.items = items
        self.now = float(now)
        self.available = np.ones(n, bool)
        self.price = np.full(n, np.nan)
        self.category = np.zeros(n, np.int32)
        self.created_at = np.full(n, np.nan)
        self.popularity = np.zeros(n)
        self.trend = np.zeros(n)
        self.is_new = np.zeros(n, bool)
        self.titles: list[str] = [""] * n
        self.categories: list[str] = [""]
        self._cat_code: dict[str, int] = {"": 0}
        self._top_code = np.zeros(1, np.int32)
        self._mask_cache: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()
        self.fallback_order = np.zeros(0, np.int64)
        self.new_items = np.zeros(0, np.int64)

    # ----------------------------------------------------------------- building
    @classmethod
    def from_table(
        cls,
        items: IdMap,
        item_table: pd.DataFrame | None,
        popularity: np.ndarray | None = None,
        trend: np.ndarray | None = None,
        now: float = 0.0,
        new_days: float = 30.0,
        new_max_interactions: int = 2,
    ) -> CatalogView:
        """Build from an item table aligned to `items` (as in `InteractionData.item_table`).

        The id map is copied: new catalog items must not change the training data's map.
        """
        view = cls(IdMap.from_list(items.to_list()), now)
        n = len(items)
        if popularity is not None:
            view.popularity = np.asarray(popularity, np.float64)[:n].copy()
        view.trend = (
            np.asarray(trend, np.float64)[:n] if trend is not None else view.popularity
        ).copy()
        if item_table is not None and len(item_table) == n:
            t = item_table
            if "category" in t:
                cats = t["category"].fillna("").astype(str).to_numpy()
                view.category = np.array([view._code(c) for c in cats], np.int32)
            if "price" in t:
                view.price = pd.to_numeric(t["price"], errors="coerce").to_numpy(np.float64)
            if "created_at" in t:
                view.created_at = pd.to_numeric(t["created_at"], errors="coerce").to_numpy(
                    np.float64
                )
            if "title" in t:
                view.titles = t["title"].fillna("").astype(str).tolist()
            avail = np.ones(n, bool)
            if "active" in t:
                avail &= t["active"].map(lambda v: v is not False and v != 0).to_numpy(bool)
            if "stock" in t:
                stock = pd.to_numeric(t["stock"], errors="coerce").to_numpy(np.float64)
                avail &= ~(stock <= 0)
            view.available = avail
        recent = view.created_at >= now - new_days * 86400.0 if new_days > 0 else np.zeros(n, bool)
        view.is_new = recent | (view.popularity <= new_max_interactions)
        view._refresh()
        return view

    def _code(self, category: str) -> int:
        code = self._cat_code.get(category)
        if code is not None:
            return code
        top = category.split(">")[0].strip()
        top_code = self._code(top) if top != category else -1  # parents get codes first
        code = len(self.categories)
        self.categories.append(category)
        self._cat_code[category] = code
        self._top_code = np.append(self._top_code, np.int32(code if top_code < 0 else top_code))
        return code

    def _refresh(self) -> None:
        self.fallback_order = np.argsort(-self.trend, kind="stable").astype(np.int64)
        self.new_items = np.flatnonzero(self.is_new).astype(np.int64)

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ reading
    @property
    def top_category(self) -> np.ndarray:
        """Top-level category code per item, shape (n,)."""
        return self._top_code[self.category]

    def top_of(self, items: np.ndarray) -> np.ndarray:
        """Top-level category code of `items`, shape (len(items),)."""
        return self._top_code[self.category[items]]

    def category_name(self, code: int) -> str:
        return self.categories[int(code)] if 0 <= code < len(self.categories) else ""

    def title(self, item: int) -> str:
        """A readable name: the title when known, else the item id."""
        t = self.titles[int(item)] if int(item) < len(self.titles) else ""
        return t or self.items.to_ids([item])[0]

    def category_mask(self, category: str) -> np.ndarray:
        """Per category code: is it `category` or below it? Shape (n_categories,), bool."""
        key = (category, len(self.categories))
        mask = self._mask_cache.get(key)
        if mask is None:
            c = category.strip()
            mask = np.array(
                [
                    name == c or name.startswith(c + " >") or name.startswith(c + ">")
                    for name in self.categories
                ],
                bool,
            )
            if len(self._mask_cache) > 1024:
                self._mask_cache.clear()
            self._mask_cache[key] = mask
        return mask

    # ------------------------------------------------------------------ updates
    def update_items(self, items: Iterable[Item | Mapping[str, Any]] | pd.DataFrame) -> list[int]:
        """Insert or overwrite catalog entries; returns their indices.

        Fields not given keep their value (a new item starts available, without price or
        category). Stock <= 0 or active false makes an item unavailable at once.
        """
        rows = items.to_dict("records") if isinstance(items, pd.DataFrame) else list(items)
        out: list[int] = []
        with self._lock:
            new_ids = [
                str(_field(r, "item_id"))
                for r in rows
                if str(_field(r, "item_id")) not in self.items
            ]
            new_ids = list(dict.fromkeys(new_ids))
            if new_ids:
                self._grow(len(new_ids))
            for i in new_ids:
                self.items.add(i)
            for r in rows:
                item_id = _field(r, "item_id")
                if item_id is None:
                    raise ValueError("update_items: item_id is missing")
                idx = self.items.get(str(item_id))
                self._set(idx, r, is_new=str(item_id) in new_ids)
                out.append(idx)
            self.new_items = np.flatnonzero(self.is_new).astype(np.int64)
            if new_ids:
                self.fallback_order = np.concatenate(
                    [self.fallback_order, np.arange(len(self) - len(new_ids), len(self))]
                )
        return out

    def _grow(self, extra: int) -> None:
        fills = {
            "available": True,
            "price": np.nan,
            "category": 0,
            "created_at": np.nan,
            "popularity": 0.0,
            "trend": 0.0,
            "is_new": True,
        }
        for name in _ARRAYS:
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.full(extra, fills[name], arr.dtype)]))
        self.titles = self.titles + [""] * extra

    def _set(self, idx: int, r: Any, is_new: bool) -> None:
        title = _field(r, "title")
        if title is not None:
            self.titles[idx] = str(title)
        cat = _field(r, "category")
        if cat is not None:
            self.category[idx] = self._code(str(cat))
        price = _field(r, "price")
        if price is not None:
            self.price[idx] = float(price)
        created = _field(r, "created_at")
        if created is not None:
            self.created_at[idx] = float(created)
        active = _field(r, "active", True)
        stock = _field(r, "stock")
        self.available[idx] = bool(active) and (stock is None or float(stock) > 0)
        if is_new:
            self.is_new[idx] = True

    def remove_item(self, item_id: str) -> bool:
        """Make an item unavailable everywhere at once; False when the id is unknown."""
        idx = self.items.get(str(item_id))
        if idx < 0:
            return False
        self.available[idx] = False
        return True

    # -------------------------------------------------------------- persistence
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON-able metadata for the artifact."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        meta = {
            "ids": self.items.to_list(),
            "now": self.now,
            "titles": self.titles,
            "categories": self.categories,
        }
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> CatalogView:
        view = cls(IdMap.from_list(meta["ids"]), float(meta["now"]))
        for name in _ARRAYS:
            setattr(view, name, np.array(arrays[name]))
        view.titles = list(meta["titles"])
        for c in meta["categories"][1:]:
            view._code(c)
        view._refresh()
        return view
