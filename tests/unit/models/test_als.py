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
