"""Retrievers: the recall stage. `retrieve(query, n) -> Candidates`, one source each.

This module holds the base class and the two sources that need no model: trending
(time-decayed popularity, per category) and item-to-item (what shoppers chose after the
items this shopper just touched). Model-backed and content retrievers are in
`shoprec.pipeline.model_retrievers`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.pipeline.candidates import Candidates, first_positions, unique_inverse
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.request import Query

VERBS = {
    "view": "viewed",
    "click": "clicked",
    "add_to_cart": "added to your cart",
    "wishlist": "saved to your wishlist",
    "purchase": "bought",
    "rating": "rated",
    "remove_from_cart": "removed from your cart",
}


def verb(event_type: str) -> str:
    """Past-tense phrase for an event type ("" -> "interacted with")."""
    return VERBS.get(event_type, "interacted with")


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n largest finite scores, best first. Shape (<= n,)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > n:
        part = np.argpartition(-scores[finite], n - 1)[:n]
        finite = finite[part]
    return finite[np.argsort(-scores[finite], kind="stable")]


class Retriever(ABC):
    """One recall source. Subclasses set `kind` (for loading) and implement the verbs.

    `name` identifies the source in explanations, ranker features and debug routes.
    """

    kind: ClassVar[str] = "base"
    # True when `explain`'s text depends on the (resolved) reference and the query only,
    # not on the item: the pipeline then words each reference once per response
    explain_by_ref: ClassVar[bool] = False
    name: str

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        """Learn from training interactions (default: nothing to learn)."""
        return self

    @abstractmethod
    def retrieve(self, query: Query, n: int) -> Candidates:
        """Up to `n` candidates for `query`, best first, with evidence references."""

    def similar(self, item: int, n: int) -> Candidates:
        """Items similar to one item (for `similar_items`); empty when not supported."""
        return Candidates.empty()

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        """A sentence a shopper can read, from this source's evidence reference."""
        return f"recommended by {self.name}"

    def resolve_evidence(
        self, refs: np.ndarray, items: np.ndarray, query: Query | None
    ) -> np.ndarray:
        """The evidence references of the shown `items`, for sources that leave some to be
        worked out only for them (default: `refs` unchanged). Shapes (n,), (n,) -> (n,)."""
        return refs

    # persistence: params.json (constructor kwargs) + state.npz (learned arrays)
    def params(self) -> dict[str, Any]:
        return {"name": self.name}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Restore the arrays returned by `state` (default: none)."""

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(json.dumps({"kind": self.kind, **self.params()}))
        st = self.state()
        if st:
            np.savez(path / "state.npz", **st)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        params = json.loads((path / "params.json").read_text())
        params.pop("kind", None)
        obj = cls(**params)
        if (path / "state.npz").exists():
            with np.load(path / "state.npz", allow_pickle=False) as z:
                obj.set_state({k: z[k] for k in z.files})
        return obj


def decayed_popularity(data: InteractionData, half_life_days: float) -> np.ndarray:
    """Sum of interaction weights, each halved every `half_life_days` before the last event.

    Returns shape (n_items,). A half-life <= 0 gives plain weighted popularity.
    """
    w = data.weights.astype(np.float64)
    if half_life_days > 0 and data.n_interactions:
        age = data.timestamps.max() - data.timestamps
        w = w * np.exp2(-age / (half_life_days * 86400.0))
    return np.bincount(data.item_idx, weights=w, minlength=data.n_items)


class TrendingRetriever(Retriever):
    """Trending items overall and in the shopper's favourite categories.

    Scores are time-decayed popularity (`half_life_days`); the evidence of each item is its
    category code ("trending in Skin Care").
    """

    kind = "trending"
    explain_by_ref = True

    def __init__(self, name: str = "trending", half_life_days: float = 7.0, n_categories: int = 3):
        self.name = name
        self.half_life_days = half_life_days
        self.n_categories = n_categories

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "half_life_days": self.half_life_days,
            "n_categories": self.n_categories,
        }

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        trend = decayed_popularity(data, self.half_life_days)
        self.trend_ = trend
        self.order_ = np.flatnonzero(trend > 0)[np.argsort(-trend[trend > 0], kind="stable")]
        self._index_categories(catalog)
        return self

    def _index_categories(self, catalog: CatalogView) -> None:
        cats = catalog.category[self.order_]
        by_cat = np.argsort(cats, kind="stable")  # keeps trend order inside a category
        self.cat_items_ = self.order_[by_cat]
        counts = np.bincount(cats, minlength=len(catalog.categories))
        self.cat_indptr_ = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.cat_of_ = catalog.category[: len(self.trend_)].copy()

    def state(self) -> dict[str, np.ndarray]:
        return {
            k: getattr(self, k + "_")
            for k in ("trend", "order", "cat_items", "cat_indptr", "cat_of")
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            setattr(self, k + "_", v)

    def retrieve(self, query: Query, n: int) -> Candidates:
        if len(query.history) == 0:
            # cold start: up to half the list is the best item of each category, so that the
            # diversity stage has every category to choose from
            nonempty = np.flatnonzero(np.diff(self.cat_indptr_) > 0)
            best = self.cat_items_[self.cat_indptr_[nonempty]]
            best = best[np.argsort(-self.trend_[best], kind="stable")][: n // 2]
            parts = [best, self.order_[:n]]
        else:
            # up to half the list from the shopper's favourite categories, then the global top
            parts = []
            hist = query.history[query.history < len(self.cat_of_)]
            held = self.cat_of_[hist]
            first = first_positions(held)
            cats = held[first]
            counts = np.bincount(np.searchsorted(cats, held), minlength=len(cats))
            per_cat = max(1, n // (2 * max(1, self.n_categories)))
            for c in cats[np.argsort(-counts, kind="stable")][: self.n_categories]:
                if c == 0 or c + 1 >= len(self.cat_indptr_):
                    continue
                parts.append(self.cat_items_[self.cat_indptr_[c] : self.cat_indptr_[c] + per_cat])
            parts.append(self.order_[:n])
        items = np.concatenate(parts)
        items = items[np.sort(first_positions(items))][
            :n
        ]  # keeps the guaranteed parts before the global tail
        scores = self.trend_[items]
        o = np.argsort(-scores, kind="stable")
        return Candidates.from_source(self.name, items[o], scores[o], self.cat_of_[items[o]])

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        cat = catalog.category_name(ref)
        return f"trending in {cat}" if cat else "trending in the shop"


class ItemToItemRetriever(Retriever):
    """ "Often bought after X": directed co-occurrence within a window of each sequence.

    For every pair (a at position t, b at t + lag), lag <= `window`, b gains weight 1/lag
    as a successor of a; counts are normalised by sqrt(pop_a * pop_b) and each item keeps
    its `neighbours` best successors (a truncated CSR). At request time the shopper's
    `recent` latest items seed the list, more recent ones weighing more (`decay` per step).
    The evidence of a candidate is the history item that contributed most.
    """

    kind = "item_to_item"
    explain_by_ref = True

    def __init__(
        self,
        name: str = "item_to_item",
        window: int = 3,
        neighbours: int = 50,
        recent: int = 5,
        decay: float = 0.7,
    ):
        self.name = name
        self.window = window
        self.neighbours = neighbours
        self.recent = recent
        self.decay = decay

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "window": self.window,
            "neighbours": self.neighbours,
            "recent": self.recent,
            "decay": self.decay,
        }

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        if self.window < 1 or self.neighbours < 1:
            raise ValueError("ItemToItemRetriever: window and neighbours must be >= 1")
        o = data.order
        users, items = data.user_idx[o], data.item_idx[o].astype(np.int64)
        rows, cols, vals = [], [], []
        for lag in range(1, self.window + 1):
            same = (users[:-lag] == users[lag:]) & (items[:-lag] != items[lag:])
            rows.append(items[:-lag][same])
            cols.append(items[lag:][same])
            vals.append(np.full(int(same.sum()), 1.0 / lag))
        n = data.n_items
        c = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        c.sum_duplicates()
        pop = np.maximum(data.item_popularity(), 1.0)
        r = np.repeat(np.arange(n), np.diff(c.indptr))
        score = c.data / np.sqrt(pop[r] * pop[c.indices])
        # keep the best `neighbours` per row: sort by (row, -score), then cut by rank in row
        o2 = np.lexsort((-score, r))
        rank = np.arange(len(o2)) - c.indptr[r[o2]]
        keep = o2[rank < self.neighbours]
        counts = np.bincount(r[keep], minlength=n)
        self.indptr_ = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.indices_ = c.indices[keep].astype(np.int64)
        self.scores_ = score[keep].astype(np.float32)
        return self

    def state(self) -> dict[str, np.ndarray]:
        return {"indptr": self.indptr_, "indices": self.indices_, "scores": self.scores_}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.indptr_, self.indices_, self.scores_ = (
            state["indptr"],
            state["indices"],
            state["scores"],
        )

    def _neighbours(self, seeds: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
        seeds = seeds[seeds < len(self.indptr_) - 1]
        if len(seeds) == 0:
            z = np.zeros(0, np.int64)
            return z, np.zeros(0), z
        starts, stops = self.indptr_[seeds], self.indptr_[seeds + 1]
        lens = stops - starts
        pos = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(
            lens.sum()
        )
        cand = self.indices_[pos]
        contrib = self.scores_[pos] * np.repeat(weights[: len(seeds)], lens)
        src = np.repeat(seeds, lens)
        return cand, contrib, src

    def _aggregate(
        self, cand: np.ndarray, contrib: np.ndarray, src: np.ndarray, n: int
    ) -> Candidates:
        if len(cand) == 0:
            return Candidates.empty()
        uniq, inv = unique_inverse(cand)
        total = np.bincount(inv, weights=contrib)
        best = np.lexsort((-contrib, inv))  # per item, its largest contribution first
        first = best[np.concatenate([[True], inv[best][1:] != inv[best][:-1]])]
        evidence = np.empty(len(uniq), np.int64)
        evidence[inv[first]] = src[first]
        o = top_n(total, n)
        return Candidates.from_source(self.name, uniq[o], total[o], evidence[o])

    def retrieve(self, query: Query, n: int) -> Candidates:
        seeds = query.recent(self.recent)
        weights = self.decay ** np.arange(len(seeds), dtype=np.float64)
        return self._aggregate(*self._neighbours(seeds, weights), n)

    def similar(self, item: int, n: int) -> Candidates:
        return self._aggregate(*self._neighbours(np.array([item], np.int64), np.ones(1)), n)

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        if ref < 0:
            return "often bought together"
        if query is None:
            return f"often bought after {catalog.title(ref)}"
        return (
            f"often bought after {catalog.title(ref)}, which you {verb(query.event_type_of(ref))}"
        )
