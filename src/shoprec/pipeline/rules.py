"""Hard rules and the fallback top-up: the first and last re-rank stages.

`Rules.allowed(query, items)` is the one place that decides whether an item may be shown to
this shopper now (available, not bought / seen / hidden, price range, category include and
exclude). Every stage that adds items (exploration, promotions, top-up) asks it too, so no
path around the rules exists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from shoprec.pipeline.candidates import Candidates, concat
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.request import Query


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """`np.unique(a)` for the short integer arrays of a request, by sorting a copy (numpy's
    hash-based unique costs tens of microseconds even for a few hundred values)."""
    a = np.sort(np.asarray(a).ravel())
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if len(a) else a


def member(items: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """`np.isin(items, sorted_values)` for sorted `sorted_values`, by binary search (cheaper
    than `np.isin` for the short lists of a request). Shape (len(items),), bool."""
    if len(sorted_values) == 0:
        return np.zeros(len(items), bool)
    pos = np.searchsorted(sorted_values, items)
    return sorted_values[np.minimum(pos, len(sorted_values) - 1)] == items


class Reranker(ABC):
    """One re-rank stage: `rerank(query, candidates) -> candidates`."""

    name: str = "reranker"
    # True for a stage that reads and changes only the first `query.k` rows (inserting
    # rows there is fine) and leaves nothing else for the stages after it: the pipeline
    # then hands it the list cut to k (`Candidates.cut`), which gives the same top k
    top_k_only: bool = False

    @abstractmethod
    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        """The candidates filtered, reordered or extended; notes go to `adjustments`."""


class Rules:
    """Per-request eligibility of items, vectorised over index arrays."""

    def __init__(self, catalog: CatalogView):
        self.catalog = catalog

    def allowed(self, query: Query, items: np.ndarray) -> np.ndarray:
        """Boolean mask, shape (len(items),): may each item be shown for `query`?"""
        cat = self.catalog
        items = np.asarray(items, np.int64)
        available = cat.available  # one snapshot: arrays are replaced, never resized
        ok = (items >= 0) & (items < len(available))
        items = np.where(ok, items, 0)
        ok &= available[items]
        req = query.request
        if req.min_price is not None or req.max_price is not None:
            price = cat.price[items]
            known = ~np.isnan(price)
            if req.min_price is not None:
                ok &= ~known | (price >= req.min_price)
            if req.max_price is not None:
                ok &= ~known | (price <= req.max_price)
        codes = cat.category[items]
        if req.category:
            ok &= cat.category_mask(req.category)[codes]
        for excluded in req.exclude_categories:
            ok &= ~cat.category_mask(excluded)[codes]
        if len(query.excluded):
            ok &= ~member(items, query.excluded)  # sorted: `Query.excluded` is np.unique's
        return ok


class RuleFilter(Reranker):
    """Drops every candidate the rules forbid."""

    name = "rules"

    def __init__(self, rules: Rules):
        self.rules = rules

    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        if len(candidates) == 0:
            return candidates
        return candidates.take(np.flatnonzero(self.rules.allowed(query, candidates.items)))


class TopUp(Reranker):
    """Cuts the list to k and fills a short list with trending available items.

    It walks the catalog's fallback order (time-decayed popularity, new items last) in
    doubling chunks, keeping items the rules allow, so a response has k items whenever the catalog
    allows. A per-category cap, when set, is honoured first and relaxed only if needed.
    """

    name = "fallback"
    top_k_only = True

    def __init__(self, rules: Rules, max_per_category: int = 0, chunk: int = 512):
        self.rules = rules
        self.max_per_category = max_per_category
        self.chunk = chunk

    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        k = query.k
        out = candidates.head(k)
        need = k - len(out)
        if need <= 0:
            return out
        order = self.rules.catalog.fallback_order
        taken = out.items
        taken_sorted = np.sort(taken)
        picked: list[np.ndarray] = []
        spare: list[np.ndarray] = []
        n_picked = 0
        cap = self.max_per_category
        cat_counts = (
            np.bincount(
                self.rules.catalog.category[taken], minlength=len(self.rules.catalog.categories)
            )
            if cap
            else None
        )
        start, size = 0, self.chunk
        while start < len(order):
            # chunks double, so a narrow filter over a large catalog costs a few vector passes
            block = order[start : start + size]
            start, size = start + size, size * 2
            block = block[self.rules.allowed(query, block) & ~member(block, taken_sorted)]
            if cap and len(block):
                block, over = self._cap(block, cat_counts, need - n_picked)
                spare.append(over)
            picked.append(block[: need - n_picked])
            n_picked += len(picked[-1])
            if n_picked >= need:
                break
        if n_picked < need and spare:  # relax the cap rather than return a short list
            extra = np.concatenate(spare)[: need - n_picked]
            picked.append(extra)
        items = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        if len(items) == 0:
            return out
        base = float(out.scores[-1]) if len(out) else 0.0
        scores = base - 1e-6 * np.arange(1, len(items) + 1)
        fill = Candidates.from_source(self.name, items, scores)
        for i in items:
            fill.note(int(i), "fallback: popular item added to fill the list")
        return concat([out, fill], {**out.adjustments, **fill.adjustments})

    def _cap(self, block: np.ndarray, counts: np.ndarray, need: int) -> tuple[np.ndarray, ...]:
        cats = self.rules.catalog.category[block]
        if counts.shape[0] < len(self.rules.catalog.categories):
            counts.resize(len(self.rules.catalog.categories), refcheck=False)
        keep = np.zeros(len(block), bool)
        n_keep = 0
        for j, c in enumerate(cats.tolist()):  # short: stops once `need` items are kept
            if counts[c] < self.max_per_category:
                counts[c] += 1
                keep[j] = True
                n_keep += 1
                if n_keep >= need:
                    break
        return block[keep], block[~keep]
