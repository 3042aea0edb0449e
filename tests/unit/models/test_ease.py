"""EASE: the closed form against a direct numpy computation; lambda chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.ease import EASE


def random_data(seed: int = 0) -> InteractionData:
    rng = np.random.default_rng(seed)
    seqs = {f"u{u}": [f"i{i}" for i in rng.choice(25, rng.integers(2, 8), replace=False)]
            for u in range(60)}  # fmt: skip
    return InteractionData.from_sequences(seqs)


def test_matches_closed_form() -> None:
    d = random_data()
    m = EASE(l2=7.0).fit(d)
    x = (d.matrix().toarray() > 0).astype(float)
    p = np.linalg.inv(x.T @ x + 7.0 * np.eye(d.n_items))
    want = np.eye(d.n_items) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(m.weights_, want, atol=1e-5)
    assert (np.diag(m.weights_) == 0).all()
    h = [np.array([0, 3]), np.array([], dtype=np.int64)]
    np.testing.assert_allclose(m.score(h)[0], want[0] + want[3], atol=1e-5)


def test_l2_chosen_on_validation_from_grid() -> None:
    d = random_data(1)
    seqs = d.sequences()
    valid = EvalSet(
        users=np.arange(d.n_users),
        histories=[s[:-1] for s in seqs],
        targets=sp.csr_matrix(
            (np.ones(d.n_users), (np.arange(d.n_users), [s[-1] for s in seqs])),
            shape=(d.n_users, d.n_items),
        ),
    )
    m = EASE(l2_grid=(1.0, 10.0, 100.0), select_items=10).fit(d, valid=valid)
    assert set(m.valid_ndcg_) == {1.0, 10.0, 100.0}
    assert m.l2_ == max(m.valid_ndcg_, key=m.valid_ndcg_.get)
    assert EASE().fit(d).l2_ == 200.0  # no validation: the default
    with pytest.raises(ValueError):
        EASE(l2=-1.0).fit(d)
