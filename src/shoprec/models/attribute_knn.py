"""Attribute item-KNN: score items by the attributes they share with the shopper's recent
items (a content-based filter in the sense of Pazzani & Billsus, 2007, on sparse attribute
ids such as S3-Rec's `item2attributes.json`, brands and categories).

Items are rows of an item x attribute matrix weighted by inverse document frequency, so a
shared brand counts more than a shared top-level category. A history is the recency-decayed
sum of its last `last` items' rows; an item's score is its dot product with that profile,
optionally multiplied by (1 + log popularity)**`popularity` so that, among items of the same
brand, the ones people buy come first. Items without attributes score only by popularity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.ranking import recency_weights, recent_items
from shoprec.models.torch_base import tag_csr


class AttributeKNN(Recommender):
    """Similarity of item attributes to the recent history.

    Parameters
    ----------
    decay : float
        Weight ratio between consecutive history items (most recent first).
    last : int
        Number of most recent history items used.
    popularity : float
        Exponent of the (1 + log popularity) factor; 0 ignores popularity.
    pop_weight : float
        Normalised popularity added to every score (tie-breaking, empty histories).
    """

    name = "attrknn"

    def __init__(
        self, decay: float = 0.6, last: int = 5, popularity: float = 0.0, pop_weight: float = 1e-4
    ):
        self.decay = decay
        self.last = last
        self.popularity = popularity
        self.pop_weight = pop_weight

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.last < 1 or not 0 <= self.decay <= 1 or self.popularity < 0:
            raise ValueError("AttributeKNN: need last >= 1, 0 <= decay <= 1, popularity >= 0")
        n = data.n_items
        indptr, indices, n_tags = tag_csr(data)
        a = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, indptr), shape=(n, max(n_tags, 1))
        )
        df = np.asarray(a.sum(axis=0)).ravel()
        idf = np.log((n + 1.0) / (df + 1.0)).astype(np.float32)
        self.attributes_ = sp.csr_matrix(a @ sp.diags(idf))
        self.attributes_t_ = sp.csr_matrix(self.attributes_.T)
        pop = data.item_popularity()
        self.item_factor_ = (1.0 + np.log1p(pop)).astype(np.float32) ** self.popularity
        self.popularity_ = (pop / max(pop.max(), 1.0)).astype(np.float32)
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (B, n_items)."""
        self._check_fitted()
        n = self.attributes_.shape[0]
        q = recency_weights(recent_items(histories, self.last, n), n, self.decay)
        profile = q @ self.attributes_  # (B, n_attributes), sparse
        out = (profile @ self.attributes_t_).toarray().astype(np.float32)
        out *= self.item_factor_[None, :]
        out += self.pop_weight * self.popularity_[None, :]
        return out
