"""ALS: matrix factorisation for implicit feedback (Hu, Koren & Volinsky, ICDM 2008), fitted
with `implicit`'s conjugate-gradient solver (Takacs et al., RecSys 2011).

The model is history-in: a user's vector is never looked up, it is solved from her history
against the fixed item factors with the same weighted least squares ALS uses for a user step
("folding in"), so serving can score a shopper's latest events without refitting:

    (Y^T Y + lambda I + sum_{i in h} (c_i - 1) y_i y_i^T) u = sum_{i in h} c_i y_i,
    c_i = alpha * sum over occurrences of i in h of recency**(steps before the latest).

With recency 1 this is exactly ALS's user step; recency < 1 trusts the latest events more
(for next-item prediction), and is chosen on validation when not given.

`fold_in` is shared with the BPR model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.ranking import pick_on_validation, recency_weights

RECENCY_GRID: tuple[float, ...] = (1.0, 0.8, 0.5, 0.2)


class ALS(Recommender):
    """Implicit-feedback ALS through `implicit.cpu.als.AlternatingLeastSquares`.

    Parameters
    ----------
    factors : int
    regularization : float
        L2 strength lambda (unscaled, as in implicit).
    alpha : float
        Confidence of an observed interaction (c = alpha * count).
    iterations : int
    random_state : int
    num_threads : int
        Threads for implicit's solver (0 = all cores); BLAS is held to one thread.
    recency : float or None
        Fold-in confidence decay per step back in the history; None: chosen from
        `recency_grid` by validation NDCG@10 when `fit` gets `valid` (no refit), else 1.
    recency_grid : sequence of float
    """

    name = "als"

    def __init__(
        self,
        factors: int = 128,
        regularization: float = 0.1,
        alpha: float = 10.0,
        iterations: int = 15,
        random_state: int = 0,
        num_threads: int = 0,
        recency: float | None = None,
        recency_grid: Sequence[float] = RECENCY_GRID,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.recency = recency
        self.recency_grid = recency_grid

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.factors < 1 or self.iterations < 1 or self.alpha <= 0 or self.regularization < 0:
            raise ValueError("ALS: need factors >= 1, iterations >= 1, alpha > 0, reg >= 0")
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        x = data.matrix().copy()
        x.data[:] = 1.0
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            model.fit(x, show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        choose_recency(self, valid)
        return self

    def user_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Folded-in user factors, shape (B, factors)."""
        self._check_fitted()
        return fold_in(
            self.item_factors_, histories, self.regularization, self.alpha, self.recency_
        )

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """u . y_j for the folded-in u. Shape (B, n_items)."""
        return self.user_vectors(histories) @ self.item_factors_.T

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by cosine of item factors (the item itself excluded). Shape (B, k)."""
        self._check_fitted()
        return cosine_neighbours(self.item_factors_, np.asarray(items, dtype=np.int64), k)


def fold_in(
    item_factors: np.ndarray,
    histories: Sequence[np.ndarray],
    regularization: float,
    alpha: float,
    recency: float = 1.0,
) -> np.ndarray:
    """Solve each history's user vector against fixed item factors (the ALS user step).

    Runs implicit's native least-squares solver (`recalculate_user`) on the histories.

    Parameters
    ----------
    item_factors : np.ndarray, shape (n_items, f)
    histories : B arrays of item indices
    regularization, alpha : as in ALS
    recency : confidence decay per step back in the history (1: plain ALS user step)

    Returns
    -------
    np.ndarray, shape (B, f), float32; an empty history gets the zero vector.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    n_items, f = y.shape
    if len(histories) == 0:
        return np.zeros((0, f), dtype=np.float32)
    x = recency_weights(histories, n_items, recency)
    key = (id(y), float(regularization), float(alpha))
    hit = _SOLVERS.get(key)
    if hit is not None and hit[0] is y:
        solver = hit[1]
    else:
        solver = AlternatingLeastSquares(
            factors=f, regularization=regularization, alpha=alpha, dtype=np.float32
        )
        solver.item_factors = y
        _SOLVERS[key] = (y, solver)
        while len(_SOLVERS) > _MAX_SOLVERS:
            _SOLVERS.pop(next(iter(_SOLVERS)))
    # a request folds in a handful of users: an OpenMP pool start would cost more than the
    # solve; offline batches use every core
    solver.num_threads = 1 if len(histories) < 64 else 0
    with threadpool_limits(1, "blas"):
        # the solver keeps Y^T Y after the first call: O(n_items f^2) once, not per request
        users = solver.recalculate_user(np.arange(x.shape[0]), x)
    return np.asarray(users, dtype=np.float32).reshape(len(histories), f)


_SOLVERS: dict[tuple[int, float, float], tuple[np.ndarray, object]] = {}
"""Fold-in solvers by item-factor array (identity checked), so serving reuses Y^T Y."""
_MAX_SOLVERS = 8


def choose_recency(model: Recommender, valid: EvalSet | None) -> None:
    """Set `model.recency_`: the given `recency`, else the best of `recency_grid` on
    validation, else 1. Shared by the fold-in models (ALS, BPR)."""
    grid = [model.recency] if model.recency is not None else list(model.recency_grid)
    if not grid or not all(0 < r <= 1 for r in grid):
        raise ValueError(f"{type(model).__name__}: recency values must be in (0, 1]")
    model.recency_ = float(grid[0]) if model.recency is not None or valid is None else 1.0
    if model.recency is None and valid is not None and len(valid):
        _, model.valid_ndcg_ = pick_on_validation(model, "recency_", grid, valid)


def cosine_neighbours(
    vectors: np.ndarray, items: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each of `items`, the k other rows of `vectors` with the highest cosine."""
    from shoprec.models.base import top_k

    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    u = v / np.where(norms > 0, norms, 1.0)[:, None]
    sims = u[items] @ u.T
    sims[np.arange(len(items)), items] = -np.inf
    return top_k(sims, k)
