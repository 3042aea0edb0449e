"""BPR: learns a pairwise order; user vectors come from the history fold-in."""

from __future__ import annotations

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.models.als import fold_in
from shoprec.models.bpr import BPR


def test_bpr_ranks_cluster_items_first() -> None:
    # two disjoint clusters of 8 items; users take 5 items of one cluster
    rng = np.random.default_rng(0)
    seqs = {}
    for u in range(120):
        base = 8 * (u % 2)
        seqs[f"u{u}"] = [f"i{base + i}" for i in rng.permutation(8)[:5]]
    d = InteractionData.from_sequences(seqs)
    m = BPR(factors=8, iterations=200, learning_rate=0.02, regularization=0.05,
            num_threads=1).fit(d)  # fmt: skip
    assert m.item_factors_.shape[0] == d.n_items and m.item_bias_.shape == (d.n_items,)
    cluster = np.array([int(i[1:]) // 8 for i in d.items.to_list()])
    first = np.flatnonzero(cluster == 0)[:3]
    idx, _ = m.recommend([first], k=3)
    assert (cluster[idx[0]] == 0).all()
    np.testing.assert_allclose(
        m.user_vectors([first]), fold_in(m.item_factors_, [first], 1.0, 10.0), atol=1e-6
    )
