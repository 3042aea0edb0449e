"""The rank stage: candidate features, a LightGBM lambdarank ranker and its fallback.

Features of each candidate (one row per candidate, vectorised):
- per source: its score and its rank (NaN when that source did not find the item);
- how many sources found it;
- item popularity (log), time-decayed popularity, age in days, log price, whether it is new;
- the shopper's affinity to its category and top-level category (share of the history);
- session context: same category as the last item, its price relative to the history's
  median price, and the history length.

`LightGBMRanker` learns from held-out next items (the leave-one-out *validation* target,
never test); `WeightedSumRanker` sums per-source scores normalised to [0, 1] and is used
when no ranker is trained.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.pipeline.candidates import RANK, SCORE, Candidates
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.request import Query

BASE_FEATURES = (
    "n_sources",
    "log_popularity",
    "trend",
    "age_days",
    "log_price",
    "is_new",
    "category_affinity",
    "top_category_affinity",
    "same_category_as_last",
    "price_vs_history",
    "history_length",
)


def feature_names(sources: Sequence[str]) -> list[str]:
    names = [f"{s}_score" for s in sources] + [f"{s}_rank" for s in sources]
    return names + list(BASE_FEATURES)


def _share(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Share of `of` equal to each of `values`. Shapes (n,), (m,) -> (n,)."""
    if len(of) == 0:
        return np.zeros(len(values))
    uniq, counts = np.unique(of, return_counts=True)
    pos = np.clip(np.searchsorted(uniq, values), 0, len(uniq) - 1)
    return np.where(uniq[pos] == values, counts[pos] / len(of), 0.0)


def candidate_features(
    query: Query, cands: Candidates, catalog: CatalogView, sources: Sequence[str]
) -> np.ndarray:
    """Feature matrix for `cands`, shape (n, len(feature_names(sources))), float32."""
    n = len(cands)
    items = cands.items
    scores = cands.source_matrix(sources, SCORE)
    found = (~np.isnan(scores)).sum(axis=0, dtype=np.float64)
    cols: list[np.ndarray] = [*scores, *cands.source_matrix(sources, RANK)]
    hist = query.history[query.history < len(catalog.category)]
    cat = catalog.category[items]
    top = catalog.top_of(items)
    price = catalog.price[items]
    hist_price = catalog.price[hist]
    hist_price = hist_price[~np.isnan(hist_price)]
    med = float(np.median(hist_price)) if len(hist_price) else np.nan
    last_cat = catalog.category[hist[-1]] if len(hist) else -1
    cols += [
        found,
        np.log1p(catalog.popularity[items]),
        catalog.trend[items],
        (catalog.now - catalog.created_at[items]) / 86400.0,
        np.log1p(np.maximum(price, 0.0)),
        catalog.is_new[items].astype(np.float64),
        _share(cat, catalog.category[hist]),
        _share(top, catalog.top_of(hist)),
        (cat == last_cat).astype(np.float64) if len(hist) else np.full(n, np.nan),
        price / med if med and not np.isnan(med) else np.full(n, np.nan),
        np.full(n, float(len(query.history))),
    ]
    return np.column_stack(cols).astype(np.float32) if n else np.zeros((0, len(cols)), np.float32)


class Ranker(ABC):
    """Scores and sorts merged candidates: `rank(query, candidates) -> candidates`."""

    kind: str = "base"

    @abstractmethod
    def rank(self, query: Query, candidates: Candidates) -> Candidates:
        """Candidates with `scores` set, best first."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


class WeightedSumRanker(Ranker):
    """Sum over sources of weight * score scaled to [0, 1] within this request's list.

    Ties (e.g. no source scores) fall back to the number of sources, then to the best rank.
    """

    kind = "weighted"

    def __init__(self, weights: dict[str, float] | None = None):
        self.weights = dict(weights or {})

    def rank(self, query: Query, candidates: Candidates) -> Candidates:
        n = len(candidates)
        if n == 0:
            return candidates
        cols = candidates.columns
        scores = cols[SCORE]  # (S, n)
        found = ~np.isnan(scores)
        lo, hi = np.fmin.reduce(scores, axis=1), np.fmax.reduce(scores, axis=1)  # NaN-skipping
        span = hi - lo
        flat = ~(span > 0)  # one value (or none) in a column: every finder gets 1
        scaled = (scores - lo[:, None]) / np.where(flat, 1.0, span)[:, None]  # NaN: not found
        if flat.any():
            scaled[flat] = np.where(found[flat], 1.0, np.nan)
        np.fmax(scaled, 0.0, out=scaled)  # NaN -> 0 (the rest is >= 0 already)
        weights = [self.weights.get(s, 1.0) for s in candidates.names]
        if any(w != 1.0 for w in weights):
            scaled *= np.array(weights)[:, None]
        total = scaled.sum(axis=0)
        n_found = found.sum(axis=0)
        best_rank = np.fmin.reduce(cols[RANK], axis=0, initial=np.inf)
        candidates.scores = total
        order = np.lexsort((best_rank, -n_found, -total))
        return candidates.take(order)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": self.weights}


class LightGBMRanker(Ranker):
    """A LightGBM lambdarank model over `candidate_features`.

    Parameters
    ----------
    sources : sequence of str
        Source names, in feature order (a source missing at serve time gives NaN columns).
    catalog : CatalogView
    params : dict
        LightGBM parameters (objective, learning rate, leaves, rounds...).
    """

    kind = "lightgbm"

    def __init__(
        self, sources: Sequence[str], catalog: CatalogView, params: dict[str, Any] | None = None
    ):
        self.sources = list(sources)
        self.catalog = catalog
        self.params = dict(params or {})
        self.booster_: Any = None

    def fit(self, features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> LightGBMRanker:
        """Train on stacked per-query feature rows; `groups` are the per-query row counts."""
        import lightgbm as lgb

        if len(groups) == 0 or labels.sum() == 0:
            raise ValueError("LightGBMRanker.fit: no query with a positive candidate")
        p = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "ndcg_eval_at": [10],
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 20,
            "verbosity": -1,
            "num_threads": 1,
            "seed": 0,
            "lambdarank_truncation_level": 20,
        }
        rounds = int(self.params.get("rounds", 100))
        p.update({k: v for k, v in self.params.items() if k != "rounds"})
        ds = lgb.Dataset(
            features,
            labels,
            group=groups,
            feature_name=feature_names(self.sources),
            free_raw_data=True,
        )
        self.booster_ = lgb.train(p, ds, num_boost_round=rounds)
        return self

    def rank(self, query: Query, candidates: Candidates) -> Candidates:
        if len(candidates) == 0:
            return candidates
        x = candidate_features(query, candidates, self.catalog, self.sources)
        candidates.scores = self.booster_.predict(x, num_threads=1).astype(np.float64)
        return candidates.sorted()

    def importance(self) -> dict[str, float]:
        gain = self.booster_.feature_importance("gain")
        return dict(zip(self.booster_.feature_name(), map(float, gain), strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sources": self.sources, "params": self.params}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "ranker.json").write_text(json.dumps(self.to_dict()))
        self.booster_.save_model(str(path / "booster.txt"))

    @classmethod
    def load(cls, path: str | Path, catalog: CatalogView) -> LightGBMRanker:
        import lightgbm as lgb

        path = Path(path)
        meta = json.loads((path / "ranker.json").read_text())
        obj = cls(meta["sources"], catalog, meta.get("params"))
        obj.booster_ = lgb.Booster(model_file=str(path / "booster.txt"))
        return obj
