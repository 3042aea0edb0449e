"""Cold-start sources, as ordinary retrievers.

- `OnboardingRetriever`: what a shopper with no (or almost no) history sees: items popular in
  their segment (user attributes such as age band or gender, when known), items of the
  categories they said they like (`context["interests"]`), and the shop's popular items
  spread across categories, so a first page is not ten items of one kind.
- `NewItemsRetriever`: new products (no or few interactions) ranked by content similarity to
  the shopper's recent items, so exploration slots have relevant new items to show.

`SegmentPopularity` and `diversified_popular` are plain functions of the data that the
cold-user evaluation uses too. A shopper's first events need no retraining: history-in models
(`ModelRetriever`) and the content retrievers read them on every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.request import Query
from shoprec.pipeline.retrievers import Retriever, top_n, verb

AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens' age groups


def segment_value(column: str, value: Any) -> str:
    """The segment a raw attribute value falls in (numeric ages become age bands)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if column.startswith("age"):
        try:
            age = float(value)
        except (TypeError, ValueError):
            return str(value)
        return f"age<{next((e for e in AGE_EDGES if age < e), 'inf')}"
    return str(value)


class SegmentPopularity:
    """Item popularity within user segments, shrunk towards global popularity.

    For each attribute column, the share of the segment's interactions that went to each
    item, smoothed as (count + m * global_share) / (segment_total + m); a user's score is the
    mean over the columns whose value is known (global share when none is).

    Parameters
    ----------
    columns : sequence of str or None
        User-table columns to segment by (None: every column but user_id).
    smoothing : float
        m above, in interactions.
    """

    def __init__(self, columns: Sequence[str] | None = None, smoothing: float = 50.0):
        self.columns = columns
        self.smoothing = smoothing

    def fit(self, data: InteractionData) -> Self:
        pop = data.item_popularity()
        self.global_ = pop / max(pop.sum(), 1.0)
        self.tables_: dict[str, dict[str, np.ndarray]] = {}
        ut = data.user_table
        if ut is None:
            return self
        cols = (
            list(self.columns)
            if self.columns is not None
            else [c for c in ut.columns if c != "user_id"]
        )
        for col in cols:
            if col not in ut.columns:
                continue
            seg = np.array([segment_value(col, v) for v in ut[col].tolist()], dtype=object)
            user_seg = seg[data.user_idx]
            table: dict[str, np.ndarray] = {}
            for value in np.unique(seg):
                if value == "":
                    continue
                counts = np.bincount(data.item_idx[user_seg == value], minlength=data.n_items)
                table[value] = (counts + self.smoothing * self.global_) / (
                    counts.sum() + self.smoothing
                )
            self.tables_[col] = table
        return self

    def scores(self, attributes: Mapping[str, Any] | None) -> np.ndarray:
        """Popularity for a user with `attributes`, shape (n_items,), summing to about 1."""
        parts = []
        for col, table in self.tables_.items():
            v = segment_value(col, (attributes or {}).get(col))
            if v in table:
                parts.append(table[v])
        return np.mean(parts, axis=0) if parts else self.global_

    def user_scores(self, user_table: pd.DataFrame | None, users: np.ndarray) -> np.ndarray:
        """Scores for rows `users` of `user_table`, shape (B, n_items)."""
        if user_table is None:
            return np.tile(self.global_, (len(users), 1))
        rows = user_table.iloc[np.asarray(users, dtype=np.int64)].to_dict("records")
        return (
            np.stack([self.scores(r) for r in rows]) if rows else np.zeros((0, len(self.global_)))
        )


def diversified_popular(
    scores: np.ndarray, groups: np.ndarray, n: int, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Top `n` items taken round-robin across groups (categories), each group in score order,
    groups in order of their best item. Shape (<= n,)."""
    order = np.argsort(-scores, kind="stable")
    if eligible is not None:
        order = order[eligible[order]]
    order = order[np.isfinite(scores[order])]
    g = np.asarray(groups)[order]
    # position of each item within its group, then sort by (position, first appearance)
    _, first, inv = np.unique(g, return_index=True, return_inverse=True)
    within = np.zeros(len(order), dtype=np.int64)
    seen: dict[int, int] = {}
    for p, gi in enumerate(inv):
        within[p] = seen.get(gi, 0)
        seen[gi] = within[p] + 1
    key = np.lexsort((first[inv], within))
    return order[key][:n]


class OnboardingRetriever(Retriever):
    """Candidates for shoppers with fewer than `min_events` history items.

    Scores: segment popularity (from `context["user"]` attributes or the known user's row of
    the user table), boosted for items in `context["interests"]` categories, then spread
    round-robin across top-level categories. Evidence: -1 popular, 1 segment, 2 interest.
    """

    kind = "onboarding"

    def __init__(
        self,
        name: str = "onboarding",
        min_events: int = 3,
        interest_boost: float = 10.0,
        smoothing: float = 50.0,
        columns: Sequence[str] | None = None,
    ):
        self.name = name
        self.min_events = min_events
        self.interest_boost = interest_boost
        self.smoothing = smoothing
        self.columns = columns

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_events": self.min_events,
            "interest_boost": self.interest_boost,
            "smoothing": self.smoothing,
            "columns": list(self.columns) if self.columns is not None else None,
        }

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        self.segments_ = SegmentPopularity(self.columns, self.smoothing).fit(data)
        self.user_table_ = data.user_table
        self.catalog_ = catalog
        return self

    def _attributes(self, query: Query) -> tuple[dict[str, Any], bool]:
        ctx = dict(query.request.context or {})
        attrs = dict(ctx.get("user") or {})
        if (
            not attrs
            and query.user >= 0
            and self.user_table_ is not None
            and query.user < len(self.user_table_)
        ):
            attrs = self.user_table_.iloc[query.user].to_dict()
        return attrs, bool(attrs)

    def retrieve(self, query: Query, n: int) -> Candidates:
        if len(query.history) >= self.min_events:
            return Candidates.empty()
        attrs, has_segment = self._attributes(query)
        base = self.segments_.scores(attrs)
        cat = self.catalog_
        n_items = len(cat)
        scores = np.zeros(n_items)
        scores[: len(base)] = base
        evidence = np.full(n_items, 1 if has_segment and self.segments_.tables_ else -1, np.int64)
        interests = (query.request.context or {}).get("interests") or []
        if isinstance(interests, str):
            interests = [interests]
        hit = np.zeros(n_items, bool)
        for c in interests:
            hit |= cat.category_mask(str(c))[:n_items]
        if hit.any():
            scores[hit] = scores[hit] * self.interest_boost + 1e-9
            evidence[hit] = 2
        eligible = cat.available[:n_items].copy()
        eligible[query.history[query.history < n_items]] = False
        groups = (
            cat.top_category[:n_items]
            if not hit.any()
            else np.where(hit, -1, cat.top_category[:n_items])
        )
        items = diversified_popular(scores, groups, n, eligible)
        if hit.any():  # interests first, still diversified within them
            items = np.concatenate([items[hit[items]], items[~hit[items]]])
        return Candidates.from_source(self.name, items, scores[items], evidence[items])

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        return {1: "popular with shoppers like you", 2: "in a category you told us you like"}.get(
            ref, "popular in the shop"
        )


class NewItemsRetriever(Retriever):
    """New items (catalog.is_new) ranked by content similarity to the recent history.

    With an empty history, new items come by content similarity to the shop's popular items
    (the "typical" product), so a brand-new shopper can still be shown new products.
    """

    kind = "new_items"

    def __init__(
        self,
        vectors: np.ndarray | None = None,
        name: str = "new_items",
        recent: int = 5,
        decay: float = 0.7,
    ):
        self.name = name
        self.recent = recent
        self.decay = decay
        if vectors is not None:
            self.vectors_ = np.asarray(vectors, dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "recent": self.recent, "decay": self.decay}

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        if not hasattr(self, "vectors_"):
            raise ValueError("NewItemsRetriever.fit: pass content vectors (see shoprec.features)")
        self.catalog_ = catalog
        pop = data.item_popularity()
        top = np.argsort(-pop)[:50]
        self.typical_ = self.vectors_[top[top < len(self.vectors_)]].mean(axis=0)
        return self

    def set_vectors(self, vectors: np.ndarray, items: np.ndarray) -> None:
        """Set content vectors of `items`, growing the matrix for new item indices."""
        items = np.asarray(items, np.int64)
        cur = self.vectors_
        if items.max(initial=-1) >= len(cur):
            grown = np.zeros((int(items.max()) + 1, cur.shape[1]), np.float32)
            grown[: len(cur)] = cur
            cur = grown
        else:
            cur = cur.copy()
        cur[items] = vectors
        self.vectors_ = cur

    def state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors_, "typical": self.typical_}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_, self.typical_ = state["vectors"], state["typical"]

    def retrieve(self, query: Query, n: int) -> Candidates:
        vec = self.vectors_
        new = np.flatnonzero(self.catalog_.is_new[: len(vec)] & self.catalog_.available[: len(vec)])
        new = new[~np.isin(new, query.history)]
        if len(new) == 0:
            return Candidates.empty()
        seeds = query.recent(self.recent)
        seeds = seeds[seeds < len(vec)]
        if len(seeds):
            w = self.decay ** np.arange(len(seeds), dtype=np.float32)
            q = w @ vec[seeds]
        else:
            q = self.typical_
        scores = vec[new] @ q
        o = top_n(scores, n)
        items = new[o]
        ev = (
            seeds[np.argmax(vec[items] @ vec[seeds].T, axis=1)]
            if len(seeds)
            else np.full(len(items), -1, np.int64)
        )
        return Candidates.from_source(self.name, items, scores[o], ev)

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        if ref < 0:
            return "new in the shop"
        how = verb(query.event_type_of(ref)) if query is not None else "liked"
        return f"new, and like {catalog.title(ref)}, which you {how}"
