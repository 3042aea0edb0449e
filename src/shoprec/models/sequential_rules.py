"""Sequential rules: weighted item-to-item transitions (Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", UMUAI 2018, the "SR" baseline, extended with a
small backward weight and several recent items as the query).

Training counts, for every pair of items at distance d <= `window` in a user's sequence,
a forward transition a -> b with weight 1/d and a backward one b -> a with weight
`backward`/d. Rows are normalised by (row total)^`alpha` to damp popular sources. A history
is scored by the rows of its last `last` items, the most recent weighted 1, the one before
`decay`, then `decay`**2, and so on. A tiny popularity term breaks ties (and serves users
with no history).
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


class SequentialRules(Recommender):
    """Item-to-item transition model over ordered histories.

    Parameters
    ----------
    window : int
        Largest distance between two items of a sequence that still counts as a transition.
    backward : float
        Weight of reverse transitions (b before a) relative to forward ones.
    alpha : float
        Row normalisation exponent (0: raw counts, 1: transition probabilities).
    decay : float
        Weight ratio between consecutive items of the query history (most recent first).
    last : int
        Number of most recent history items used as the query.
    pop_weight : float
        Weight of normalised popularity added to every score (tie-breaking).
    """

    name = "seqrules"

    def __init__(
        self,
        window: int = 3,
        backward: float = 0.25,
        alpha: float = 0.3,
        decay: float = 0.6,
        last: int = 5,
        pop_weight: float = 1e-4,
    ):
        self.window = window
        self.backward = backward
        self.alpha = alpha
        self.decay = decay
        self.last = last
        self.pop_weight = pop_weight

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.window < 1 or self.last < 1:
            raise ValueError("SequentialRules: window and last must be >= 1")
        if not 0 <= self.decay <= 1 or self.alpha < 0 or self.backward < 0:
            raise ValueError("SequentialRules: need 0 <= decay <= 1, alpha >= 0, backward >= 0")
        n = data.n_items
        order = data.order
        items = data.item_idx[order].astype(np.int64)
        users = data.user_idx[order]
        rows, cols, vals = [], [], []
        for d in range(1, self.window + 1):
            same = users[:-d] == users[d:]
            a, b = items[:-d][same], items[d:][same]
            rows += [a, b]
            cols += [b, a]
            vals += [np.full(len(a), 1.0 / d), np.full(len(a), self.backward / d)]
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        v = np.concatenate(vals) if vals else np.zeros(0)
        t = sp.csr_matrix((v.astype(np.float32), (r, c)), shape=(n, n))
        t.sum_duplicates()
        t.eliminate_zeros()
        totals = np.asarray(t.sum(axis=1)).ravel()
        scale = np.where(totals > 0, np.maximum(totals, 1e-12) ** -self.alpha, 0.0)
        self.transitions_ = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ t)
        pop = data.item_popularity()
        self.popularity_ = (pop / max(pop.max(), 1.0)).astype(np.float32)
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (B, n_items): decayed sum of the transition rows of the recent items."""
        self._check_fitted()
        n = self.transitions_.shape[0]
        q = recency_weights(recent_items(histories, self.last, n), n, self.decay)
        out = (q @ self.transitions_).toarray().astype(np.float32)
        out += self.pop_weight * self.popularity_[None, :]
        return out
