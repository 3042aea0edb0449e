"""Content-based recommender: items described by their text, images, category, brand and price.

The classic content-based filter (Pazzani & Billsus, "Content-based recommendation systems",
The Adaptive Web, 2007): a shopper's profile is the recency-weighted mean of the content vectors
of the items in their history, and every item is scored by cosine similarity to it. It needs no
interactions for an item, so a product added a minute ago is scored like any other, and
`similar_items` works for it at once. Content vectors come from
`shoprec.features.fusion.ContentEncoder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.features.fusion import ContentEncoder
from shoprec.models.base import Recommender, top_k


def history_profile(
    vectors: np.ndarray, histories: Sequence[np.ndarray], decay: float, max_history: int
) -> np.ndarray:
    """Recency-weighted sum of item vectors per history (the last item weighs 1, the one
    before `decay`, ...). Shape (B, d); zero rows for empty histories."""
    out = np.zeros((len(histories), vectors.shape[1]), dtype=np.float32)
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_history:]
        if len(h):
            w = decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float32)
            out[r] = w @ vectors[h]
    return out


class ContentKNN(Recommender):
    """Score items by content similarity to the shopper's recent items.

    Parameters
    ----------
    text_backend, text_dim, weights, image_root :
        Passed to `ContentEncoder`.
    decay : float
        Weight of each older history item relative to the next one (1 = plain mean).
    max_history : int
        Most recent items used.
    popularity_weight : float
        Weight of a log-popularity prior added to the similarity (also what an empty history
        gets).
    """

    name = "content"

    def __init__(
        self,
        text_backend: str = "auto",
        text_dim: int = 128,
        weights: dict[str, float] | None = None,
        image_root: str | None = None,
        decay: float = 0.8,
        max_history: int = 20,
        popularity_weight: float = 0.0,
    ):
        self.text_backend = text_backend
        self.text_dim = text_dim
        self.weights = weights
        self.image_root = image_root
        self.decay = decay
        self.max_history = max_history
        self.popularity_weight = popularity_weight

    def fit(
        self,
        data: InteractionData,
        valid: EvalSet | None = None,
        images: Mapping[str, Any] | None = None,
        encoder: ContentEncoder | None = None,
    ) -> Self:
        """Encode the catalog (`data.item_table`, which must describe every item index).

        A fitted `encoder` may be passed to share it (and its embedding cache) between models.
        """
        if data.item_table is None or len(data.item_table) != data.n_items:
            raise ValueError("ContentKNN.fit: data.item_table must have one row per item")
        if not 0 < self.decay <= 1:
            raise ValueError("ContentKNN: decay must be in (0, 1]")
        if encoder is not None:
            self.encoder_ = encoder
            self.item_vectors_ = encoder.transform(data.item_table, images)
        else:
            self.encoder_ = ContentEncoder(
                text_backend=self.text_backend,
                text_dim=self.text_dim,
                weights=self.weights,
                image_root=self.image_root,
            )
            self.item_vectors_ = self.encoder_.fit_transform(data.item_table, images)
        pop = np.log1p(data.item_popularity())
        self.popularity_ = (pop / pop.max() if pop.max() > 0 else pop).astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return len(self.item_vectors_)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Cosine of each item to the history profile, shape (B, n_items) float32."""
        self._check_fitted()
        prof = history_profile(self.item_vectors_, histories, self.decay, self.max_history)
        norms = np.linalg.norm(prof, axis=1, keepdims=True)
        prof = np.divide(prof, norms, out=np.zeros_like(prof), where=norms > 0)
        scores = prof @ self.item_vectors_.T
        if self.popularity_weight:
            scores += self.popularity_weight * self.popularity_[None, :]
        return scores.astype(np.float32, copy=False)

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by content cosine (the item itself excluded), shape (B, k) each."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        scores = self.item_vectors_[items] @ self.item_vectors_.T
        scores[np.arange(len(items)), items] = -np.inf
        return top_k(scores, k)

    # ------------------------------------------------------------ cold items
    def item_vectors_for(
        self, table: pd.DataFrame, images: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Content vectors of (new or changed) catalog rows, shape (N, d), not stored."""
        self._check_fitted()
        return self.encoder_.transform(table, images)

    def set_item_vectors(self, indices: np.ndarray, vectors: np.ndarray) -> None:
        """Store vectors for item `indices`; indices >= n_items extend the catalog (their
        popularity starts at 0). Used by the pipeline's `update_items`."""
        self._check_fitted()
        indices = np.asarray(indices, dtype=np.int64)
        need = int(indices.max()) + 1 if len(indices) else 0
        if need > self.n_items:
            grow = need - self.n_items
            self.item_vectors_ = np.vstack(
                [self.item_vectors_, np.zeros((grow, self.item_vectors_.shape[1]), np.float32)]
            )
            self.popularity_ = np.concatenate([self.popularity_, np.zeros(grow, np.float32)])
        self.item_vectors_[indices] = vectors

    def add_items(
        self, table: pd.DataFrame, indices: np.ndarray, images: Mapping[str, Any] | None = None
    ) -> None:
        """Encode `table` rows and store them at item `indices` (new items get the next
        indices of the id map)."""
        self.set_item_vectors(indices, self.item_vectors_for(table, images))
