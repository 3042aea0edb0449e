"""Hybrid matrix factorisation: implicit ALS item factors, content-projected factors for cold
items, and histories folded in at request time.

- Item factors: weighted ALS for implicit feedback (Hu, Koren & Volinsky, ICDM 2008) via
  `implicit`.
- Cold items: a ridge projection from content vectors to item factors, learned on warm items
  (attribute-to-feature mapping, Gantner et al., ICDM 2010), gives every item with zero
  interactions a factor vector, so it can be recommended and has similar items.
- Histories, not user ids: a shopper's factor is solved from their history by the ALS user
  step ("folding in"), so a new shopper's first clicks, including clicks on new items, count at
  once without retraining.
- Optional blend with content similarity to the history (`content_weight`), which is how
  content can also help warm items.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.features.fusion import ContentEncoder
from shoprec.features.projection import ContentProjection
from shoprec.models.base import Recommender, top_k
from shoprec.models.content import history_profile


def _row_standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


class HybridMF(Recommender):
    """ALS + content projection for cold items + fold-in of histories.

    Parameters
    ----------
    factors, regularization, alpha, iterations :
        ALS settings (confidence = 1 + alpha * weight).
    projection_alpha : float
        Ridge penalty of the content -> factor projection.
    content_weight : float
        Weight of content similarity (row-standardised) added to the row-standardised CF
        score; 0 scores by factors alone.
    decay, max_history :
        Recency weighting and length of the history used for folding in and for content.
    binary : bool
        Treat every interaction as weight 1 (repeats still add up).
    text_backend, text_dim, weights, image_root :
        Passed to `ContentEncoder`.
    random_state : int
    """

    name = "hybrid"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 20.0,
        iterations: int = 15,
        projection_alpha: float = 1.0,
        content_weight: float = 0.0,
        decay: float = 1.0,
        max_history: int = 50,
        binary: bool = True,
        text_backend: str = "auto",
        text_dim: int = 128,
        weights: dict[str, float] | None = None,
        image_root: str | None = None,
        random_state: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.projection_alpha = projection_alpha
        self.content_weight = content_weight
        self.decay = decay
        self.max_history = max_history
        self.binary = binary
        self.text_backend = text_backend
        self.text_dim = text_dim
        self.weights = weights
        self.image_root = image_root
        self.random_state = random_state

    def fit(
        self,
        data: InteractionData,
        valid: EvalSet | None = None,
        images: Mapping[str, Any] | None = None,
        content: np.ndarray | None = None,
    ) -> Self:
        """Train ALS on `data`, encode the catalog and project content onto cold items.

        `content` (n_items, d) may be passed to reuse vectors already computed by a
        `ContentEncoder`; otherwise `data.item_table` is encoded (without an item table the
        model is plain ALS with fold-in).
        """
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        if data.n_interactions == 0:
            raise ValueError("HybridMF.fit: no interactions")
        if content is None and (data.item_table is None or len(data.item_table) != data.n_items):
            # no catalog: plain ALS with fold-in (cold items get the mean item factor)
            content = np.zeros((data.n_items, 1), dtype=np.float32)
        if content is None:
            self.encoder_ = ContentEncoder(
                text_backend=self.text_backend,
                text_dim=self.text_dim,
                weights=self.weights,
                image_root=self.image_root,
            )
            content = self.encoder_.fit_transform(data.item_table, images)
        elif len(content) != data.n_items:
            raise ValueError("HybridMF.fit: content must have one row per item")
        self.content_ = np.asarray(content, dtype=np.float32)
        m = data.matrix().astype(np.float32)
        if self.binary:
            m.data = np.ones_like(m.data)
        # implicit warns about OpenBLAS threads at construction; the limit below handles it
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                use_gpu=False,
            )
            als.fit(m.tocsr(), show_progress=False)
        factors = np.asarray(als.item_factors, dtype=np.float32)[:, : self.factors]
        warm = data.item_popularity() > 0
        self.projection_ = ContentProjection(self.projection_alpha).fit(
            self.content_[warm], factors[warm]
        )
        factors[~warm] = self.projection_.predict(self.content_[~warm])
        self.item_factors_ = factors
        self.cold_ = ~warm
        self._refresh_gram()
        return self

    def _refresh_gram(self) -> None:
        y = self.item_factors_.astype(np.float64)
        self.gram_ = y.T @ y

    @property
    def n_items(self) -> int:
        return len(self.item_factors_)

    # ---------------------------------------------------------------- scoring
    def user_factors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Fold each history in with the ALS user step, shape (B, factors)."""
        self._check_fitted()
        y = self.item_factors_.astype(np.float64)
        f = y.shape[1]
        out = np.zeros((len(histories), f), dtype=np.float32)
        reg = self.regularization * np.eye(f)
        for r, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)[-self.max_history :]
            if not len(h):
                continue
            items, inv = np.unique(h, return_inverse=True)
            w = self.decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64)
            strength = np.bincount(inv, weights=w)
            conf = self.alpha * strength  # confidence c as in implicit (alpha * weight)
            yh = y[items]
            a = self.gram_ + (yh.T * (conf - 1.0)) @ yh + reg
            out[r] = np.linalg.solve(a, yh.T @ conf)
        return out

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """CF score (plus weighted content similarity), shape (B, n_items) float32."""
        scores = self.user_factors(histories) @ self.item_factors_.T
        if self.content_weight:
            prof = history_profile(self.content_, histories, self.decay, self.max_history)
            scores = _row_standardise(scores) + self.content_weight * _row_standardise(
                prof @ self.content_.T
            )
        return scores.astype(np.float32, copy=False)

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by factor cosine (cold items by their projected factors)."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        y = self.item_factors_ / np.maximum(
            np.linalg.norm(self.item_factors_, axis=1, keepdims=True), 1e-9
        )
        scores = y[items] @ y.T
        scores[np.arange(len(items)), items] = -np.inf
        return top_k(scores, k)

    # ------------------------------------------------------------ cold items
    def add_items(
        self,
        table: pd.DataFrame,
        indices: np.ndarray,
        images: Mapping[str, Any] | None = None,
        content: np.ndarray | None = None,
    ) -> None:
        """Give items at `indices` (new ones extend the catalog) content vectors, and cold ones
        projected factors, so they are recommendable at once."""
        self._check_fitted()
        if content is None:
            if not hasattr(self, "encoder_"):
                raise ValueError("HybridMF.add_items: fitted with external content; pass content")
            content = self.encoder_.transform(table, images)
        indices = np.asarray(indices, dtype=np.int64)
        need = int(indices.max()) + 1 if len(indices) else 0
        if need > self.n_items:
            grow = need - self.n_items
            self.item_factors_ = np.vstack(
                [self.item_factors_, np.zeros((grow, self.factors), np.float32)]
            )
            self.content_ = np.vstack(
                [self.content_, np.zeros((grow, self.content_.shape[1]), np.float32)]
            )
            self.cold_ = np.concatenate([self.cold_, np.ones(grow, dtype=bool)])
        self.content_[indices] = content
        # items with interactions keep their learned factors; only cold ones are projected
        cold = self.cold_[indices]
        self.item_factors_[indices[cold]] = self.projection_.predict(np.asarray(content)[cold])
        self._refresh_gram()
