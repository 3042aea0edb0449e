"""ItemKNN: item-to-item neighbourhood recommendation (Sarwar et al., WWW 2001; Deshpande &
Karypis, TOIS 2004), with the shrunk cosine of Koren's neighbourhood models.

The similarity of items i and j comes from the users who interacted with both:
- "cosine":       c_ij / (sqrt(n_i n_j) + shrink),
- "cooccurrence": c_ij / (n_i + shrink)   (the share of i's users who also took j),
- "sequential":   like "cooccurrence", but c_ij counts only j *after* i within `window`
                  steps of the same user, weighted 1 / distance ("often bought after X").
Each item keeps its `neighbours` most similar items (a sparse item x item matrix S). A
history scores item j as the sum of S[i, j] over its items i, weighting recent items more
(`recency`, chosen on validation by default), and `explain` names the history items behind a
score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.ranking import pick_on_validation, recency_weights

SIMILARITIES = ("cosine", "cooccurrence", "sequential")
RECENCY_GRID: tuple[float, ...] = (1.0, 0.8, 0.5, 0.2)


class ItemKNN(Recommender):
    """Sparse item-item neighbourhood model.

    Parameters
    ----------
    similarity : {"cosine", "cooccurrence", "sequential"}
    neighbours : int
        Neighbours kept per item (top by similarity).
    shrink : float
        Shrinkage added to the denominator; damps similarities built on few users.
    window : int
        For "sequential": how many later steps of a user count as "after".
    recency : float or None
        History weight of the item p steps before the latest is recency**p (1 = all equal).
        None: chosen from `recency_grid` by validation NDCG@10 when `fit` gets `valid`
        (scoring only, no refit), else 1.
    recency_grid : sequence of float
    """

    name = "itemknn"

    def __init__(
        self,
        similarity: str = "cosine",
        neighbours: int = 200,
        shrink: float = 10.0,
        window: int = 3,
        recency: float | None = None,
        recency_grid: Sequence[float] = RECENCY_GRID,
    ):
        self.similarity = similarity
        self.neighbours = neighbours
        self.shrink = shrink
        self.window = window
        self.recency = recency
        self.recency_grid = recency_grid

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"ItemKNN: similarity must be one of {SIMILARITIES}")
        if self.neighbours < 1 or self.shrink < 0 or self.window < 1:
            raise ValueError("ItemKNN: need neighbours >= 1, shrink >= 0, window >= 1")
        grid = [self.recency] if self.recency is not None else list(self.recency_grid)
        if not grid or not all(0 < r <= 1 for r in grid):
            raise ValueError("ItemKNN: recency values must be in (0, 1]")
        n = data.n_items
        x = data.matrix().copy()
        x.data[:] = 1.0
        counts = np.asarray(x.sum(axis=0)).ravel()
        if self.similarity == "sequential":
            co = _after_counts(data.sequences(), n, self.window)
        else:
            co = sp.csr_matrix(x.T @ x)
            co.setdiag(0)
            co.eliminate_zeros()
        co = co.tocoo()
        if self.similarity == "cosine":
            denom = np.sqrt(counts[co.row] * counts[co.col]) + self.shrink
        else:
            denom = counts[co.row] + self.shrink
        vals = co.data / np.maximum(denom, 1e-12)
        self.similarity_ = _keep_top(co.row, co.col, vals, n, self.neighbours)
        self.recency_ = float(grid[0]) if self.recency is not None or valid is None else 1.0
        if self.recency is None and valid is not None and len(valid):
            _, self.valid_ndcg_ = pick_on_validation(self, "recency_", grid, valid)
        return self

    def _history_matrix(self, histories: Sequence[np.ndarray]) -> sp.csr_matrix:
        """(B, n_items) history weights: recency**(steps before the latest), summed."""
        return recency_weights(histories, self.similarity_.shape[0], self.recency_)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Sum of neighbour similarities from the history items. Shape (B, n_items)."""
        self._check_fitted()
        return (self._history_matrix(histories) @ self.similarity_).toarray().astype(np.float32)

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each item's strongest neighbours (row i of S). Shape (B, k) each."""
        return self.recommend([np.array([int(i)]) for i in items], k)

    def explain(
        self, history: np.ndarray, items: Sequence[int], n: int = 3
    ) -> list[list[tuple[int, float]]]:
        """For each of `items`, the history items that contributed most to its score.

        Returns
        -------
        Per item, up to `n` `(history_item, contribution)` pairs, largest first; only
        positive contributions ("often bought with / after history_item").
        """
        self._check_fitted()
        h = self._history_matrix([np.asarray(history)])
        hist_items, weights = h.indices, h.data
        sub = self.similarity_[hist_items][:, np.asarray(items, dtype=np.int64)].toarray()
        contrib = sub * weights[:, None]  # (len(history items), len(items))
        out = []
        for j in range(contrib.shape[1]):
            order = np.argsort(-contrib[:, j], kind="stable")[:n]
            out.append(
                [(int(hist_items[o]), float(contrib[o, j])) for o in order if contrib[o, j] > 0]
            )
        return out


def _after_counts(seqs: Sequence[np.ndarray], n_items: int, window: int) -> sp.csr_matrix:
    """c_ij = sum over users of 1 / d, d the closest step distance (<= `window`) at which the
    user took j after i: each user counts once per pair, adjacent pairs count most."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    flat = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, np.int64)
    user_of = np.repeat(np.arange(len(seqs)), lengths)
    parts: list[np.ndarray] = []
    for d in range(1, window + 1):
        if len(flat) <= d:
            break
        same = user_of[d:] == user_of[:-d]
        w = np.full(int(same.sum()), 1.0 / d)
        parts.append(np.stack([user_of[d:][same], flat[:-d][same], flat[d:][same], w], axis=1))
    if not parts:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    t = np.concatenate(parts)
    t = t[t[:, 1] != t[:, 2]]
    # one (user, i, j) keeps its largest weight (the closest occurrence)
    order = np.lexsort((-t[:, 3], t[:, 2], t[:, 1], t[:, 0]))
    t = t[order]
    first = np.ones(len(t), dtype=bool)
    first[1:] = (np.diff(t[:, :3], axis=0) != 0).any(axis=1)
    t = t[first]
    m = sp.csr_matrix(
        (t[:, 3], (t[:, 1].astype(np.int64), t[:, 2].astype(np.int64))),
        shape=(n_items, n_items),
        dtype=np.float64,
    )
    m.sum_duplicates()
    return m


def _keep_top(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, k: int
) -> sp.csr_matrix:
    """CSR (n, n) keeping, per row, the k largest positive values."""
    pos = vals > 0
    rows, cols, vals = rows[pos], cols[pos], vals[pos]
    order = np.lexsort((-vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    return sp.csr_matrix(
        (vals[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32
    )


class SequentialItemKNN(ItemKNN):
    """ItemKNN over "bought after" counts: `similarity="sequential"` by default."""

    name = "itemknn_seq"

    def __init__(
        self,
        similarity: str = "sequential",
        neighbours: int = 200,
        shrink: float = 10.0,
        window: int = 3,
        recency: float | None = None,
        recency_grid: Sequence[float] = RECENCY_GRID,
    ):
        super().__init__(similarity, neighbours, shrink, window, recency, recency_grid)
