"""ALS: the history fold-in is implicit's own user step."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.models.als import ALS, fold_in


def test_fold_in_equals_implicit_recalculate_user() -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    x = sp.random(80, 40, density=0.15, format="csr", dtype=np.float32, random_state=3)
    x.data[:] = 1.0
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(factors=6, regularization=0.3, alpha=4.0, iterations=3,
                                      random_state=0, num_threads=1)  # fmt: skip
        ref.fit(x, show_progress=False)
    want = ref.recalculate_user(np.arange(80), x)
    got = fold_in(ref.item_factors, [x[i].indices for i in range(80)], 0.3, 4.0)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_fit_is_reproducible_and_scores_from_history() -> None:
    rng = np.random.default_rng(0)
    seqs = {f"u{u}": [f"i{i}" for i in rng.choice(30, 6, replace=False)] for u in range(50)}
    d = InteractionData.from_sequences(seqs)
    a = ALS(factors=4, iterations=5, num_threads=1).fit(d)
    b = ALS(factors=4, iterations=5, num_threads=1).fit(d)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    h = [np.array([1, 2]), np.array([], dtype=np.int64)]
    s = a.score(h)
    assert s.shape == (2, d.n_items) and (s[1] == 0).all()  # empty history: zero vector


def test_recency_fold_in_weights_latest_events_more() -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    y = rng.normal(size=(10, 3)).astype(np.float32)
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(factors=3, regularization=0.5, alpha=2.0)
    ref.item_factors = y
    # history [4, 7, 4]: item 4 weighs 0.25 + 1, item 7 weighs 0.5
    x = sp.csr_matrix(([1.25, 0.5], ([0, 0], [4, 7])), shape=(1, 10), dtype=np.float32)
    want = ref.recalculate_user(np.arange(1), x)
    got = fold_in(y, [np.array([4, 7, 4])], 0.5, 2.0, recency=0.5)
    np.testing.assert_allclose(got, want.reshape(1, 3), atol=1e-5)


def test_fold_in_reuses_its_solver_and_gives_the_same_vectors():
    """Regression: each fold-in used to build a new solver and recompute Y^T Y (O(n_items f^2)
    per request)."""
    import numpy as np

    from shoprec.models import als

    y = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    hist = [np.array([1, 2, 3]), np.array([7])]
    als._SOLVERS.clear()
    a = als.fold_in(y, hist, 0.1, 10.0)
    assert len(als._SOLVERS) == 1
    b = als.fold_in(y, hist, 0.1, 10.0)
    assert len(als._SOLVERS) == 1 and np.allclose(a, b)
    als.fold_in(y.copy(), hist, 0.1, 10.0)  # another factor array: its own solver
    assert len(als._SOLVERS) == 2
