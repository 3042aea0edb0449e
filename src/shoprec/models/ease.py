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

from shoprec.data.interactions import InteractionData, histories_to_csr
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.ranking import evaluate_ndcg

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
    max_valid_users : int
        Validation users scored per grid value (a seeded sample when there are more).
    """

    name = "ease"

    def __init__(
        self,
        l2: float | None = None,
        l2_grid: Sequence[float] = (50.0, 200.0, 800.0),
        max_valid_users: int = 10000,
    ):
        self.l2 = l2
        self.l2_grid = l2_grid
        self.max_valid_users = max_valid_users

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.l2 is not None and not self.l2 > 0:
            raise ValueError(f"EASE: l2 must be > 0, got {self.l2}")
        x = data.matrix().copy()
        x.data[:] = 1.0
        gram = (x.T @ x).toarray().astype(np.float64)
        if self.l2 is not None or valid is None or len(valid) == 0:
            self.l2_ = float(self.l2 if self.l2 is not None else DEFAULT_L2)
            self.weights_ = _ease_weights(gram, self.l2_)
            return self
        sample = _sample(valid, self.max_valid_users)
        best: tuple[float, float, np.ndarray] | None = None
        self.valid_ndcg_ = {}
        for l2 in self.l2_grid:
            self.weights_ = _ease_weights(gram.copy(), float(l2))
            ndcg = evaluate_ndcg(self, sample, k=10)
            self.valid_ndcg_[float(l2)] = ndcg
            if best is None or ndcg > best[0]:
                best = (ndcg, float(l2), self.weights_)
        assert best is not None  # l2_grid is not empty: checked by the loop having run
        _, self.l2_, self.weights_ = best
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """x B for the binary history vector x. Shape (B, n_items)."""
        self._check_fitted()
        x = histories_to_csr(
            [np.asarray(h, dtype=np.int64) for h in histories], self.weights_.shape[0]
        )
        x.data[:] = 1.0
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


def _sample(valid: EvalSet, n: int, seed: int = 0) -> EvalSet:
    if len(valid) <= n:
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(valid), n, replace=False))
    return EvalSet(valid.users[rows], [valid.histories[i] for i in rows], valid.targets[rows])
