"""EASE: Embarrassingly Shallow Autoencoders for Sparse Data (Steck, WWW 2019).

A linear item-item model with a closed form: with the Gram matrix G = X^T X of the binary
user x item matrix and P = (G + lambda I)^-1, the weights are B = I - P diag(1 / diag(P)),
i.e. B_ij = -P_ij / P_jj off the diagonal and 0 on it. A history x scores items as x B, so an
unseen shopper is scored from her latest events without refitting.

The only hyper-parameter, the L2 strength lambda, is chosen on the validation split when
`l2` is None and validation data is given (one Cholesky inverse per grid value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData, histories_to_csr
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.ranking import (
    ndcg_hr_at_k,
    pick_on_validation,
    recency_weights,
    target_ranks,
)

DEFAULT_L2 = 200.0


class EASE(Recommender):
    """Closed-form item-item autoencoder.

    Parameters
    ----------
    l2 : float or None
        L2 strength lambda. None: pick from `l2_grid` by validation NDCG@10 when `fit` gets
        `valid`, else use 200.
    l2_grid : sequence of float
        Values tried when choosing on validation.
    select_items : int
        The choice of lambda is made on the sub-problem of this many most popular items (one
        small inverse per grid value), then one full-size inverse is computed: an O(n^3)
        inverse per grid value would dominate the fit on catalogs of 10k+ items.
    max_valid_users : int
        Validation users scored per grid value (a seeded sample when there are more).
    recency : float or None
        Input weight of the item p steps before the latest is recency**p (1: the binary
        history of the paper). None: chosen from `recency_grid` on validation after lambda
        (scoring only), else 1.
    recency_grid : sequence of float
    blas_threads : int
        BLAS threads for the inverse. One by default: on a shared 2-core machine, two
        spinning OpenBLAS threads ran the ml-100k fit 5x slower than one.
    """

    name = "ease"

    def __init__(
        self,
        l2: float | None = None,
        l2_grid: Sequence[float] = (10.0, 30.0, 100.0, 300.0, 1000.0),
        select_items: int = 2500,
        max_valid_users: int = 10000,
        recency: float | None = None,
        recency_grid: Sequence[float] = (1.0, 0.8, 0.5, 0.2),
        blas_threads: int = 1,
    ):
        self.l2 = l2
        self.l2_grid = l2_grid
        self.select_items = select_items
        self.max_valid_users = max_valid_users
        self.recency = recency
        self.recency_grid = recency_grid
        self.blas_threads = blas_threads

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.l2 is not None and not self.l2 > 0:
            raise ValueError(f"EASE: l2 must be > 0, got {self.l2}")
        if self.l2 is None and (not len(self.l2_grid) or min(self.l2_grid) <= 0):
            raise ValueError("EASE: l2_grid must hold positive values")
        grid = [self.recency] if self.recency is not None else list(self.recency_grid)
        if not grid or not all(0 < r <= 1 for r in grid):
            raise ValueError("EASE: recency values must be in (0, 1]")
        from threadpoolctl import threadpool_limits

        x = data.matrix().copy()
        x.data[:] = 1.0
        has_valid = valid is not None and len(valid) > 0
        with threadpool_limits(self.blas_threads, "blas"):
            gram = (x.T @ x).toarray().astype(np.float64)
            if self.l2 is not None:
                self.l2_ = float(self.l2)
            elif not has_valid:
                self.l2_ = DEFAULT_L2
            else:
                self.valid_ndcg_ = self._grid_scores(gram, valid)
                self.l2_ = max(self.valid_ndcg_, key=lambda l2: (self.valid_ndcg_[l2], -l2))
            self.weights_ = _ease_weights(gram, self.l2_)
        self.recency_ = float(grid[0]) if self.recency is not None or not has_valid else 1.0
        if self.recency is None and has_valid:
            _, self.valid_recency_ndcg_ = pick_on_validation(
                self, "recency_", grid, valid, max_users=self.max_valid_users
            )
        return self

    def _grid_scores(self, gram: np.ndarray, valid: EvalSet) -> dict[float, float]:
        """Validation NDCG@10 of each grid value on the popular-item sub-problem."""
        n = gram.shape[0]
        top = np.argsort(-gram.diagonal(), kind="stable")[: min(self.select_items, n)]
        pos = np.full(n, -1, dtype=np.int64)
        pos[top] = np.arange(len(top))
        targets = sp.csr_matrix(valid.targets)[:, top]
        rows = np.flatnonzero(np.diff(targets.indptr) > 0)
        if len(rows) > self.max_valid_users:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(rows, self.max_valid_users, replace=False))
        hist = [pos[np.asarray(valid.histories[r], dtype=np.int64)] for r in rows]
        hist = [h[h >= 0] for h in hist]
        targets = targets[rows]
        sub = gram[np.ix_(top, top)]
        out: dict[float, float] = {}
        for l2 in self.l2_grid:
            w = _ease_weights(sub.copy(), float(l2))
            ranks: list[np.ndarray] = []
            for start in range(0, len(hist), 1024):
                h = hist[start : start + 1024]
                xs = histories_to_csr(h, len(top))
                xs.data[:] = 1.0
                ranks.extend(target_ranks(xs @ w, h, targets[start : start + 1024]))
            out[float(l2)] = ndcg_hr_at_k(ranks, np.diff(targets.indptr), 10)[0]
        return out

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """x B for the history vector x (recency-weighted). Shape (B, n_items)."""
        self._check_fitted()
        x = recency_weights(histories, self.weights_.shape[0], self.recency_)
        return np.asarray(x @ self.weights_, dtype=np.float32)

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items with the largest weight from each item: row i of B. Shape (B, k) each."""
        return self.recommend([np.array([int(i)]) for i in items], k)


def _ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """B = I - P / diag(P) with P = (G + l2 I)^-1, via an in-place Cholesky inverse.

    `gram` (n, n) float64 is overwritten. Returns float32 (n, n) with a zero diagonal.
    """
    n = gram.shape[0]
    gram[np.diag_indices(n)] += l2
    potrf, potri = sl.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    c, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky failed (info={info})")
    p, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info})")
    # potri fills the upper triangle only; mirror it block by block to stay in place
    step = 1024
    for i0 in range(0, n, step):
        i1 = min(i0 + step, n)
        p[i0:i1, :i0] = p[:i0, i0:i1].T
        blk = p[i0:i1, i0:i1]
        blk[:] = np.triu(blk) + np.triu(blk, 1).T
    diag = p.diagonal().copy()
    b = np.empty((n, n), dtype=np.float32)
    np.divide(p, -diag[None, :], out=b, casting="unsafe")
    b[np.diag_indices(n)] = 0.0
    return b
