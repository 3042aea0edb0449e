"""Blend: per-user standardisation, weight selection on validation data, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.ensemble import Blend, standardise


def _data() -> InteractionData:
    # the successor rule x_i -> x_{i+1}; item popularity is flat
    seqs = {f"u{u}": [f"i{(u + k) % 6}" for k in range(4)] for u in range(12)}
    return InteractionData.from_sequences(seqs)


def test_standardise_rows():
    z = standardise(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(z[0], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    np.testing.assert_allclose(z[1], 0.0)


def test_weights_are_chosen_on_validation():
    data = _data()
    idx = data.items.to_index
    # validation: after i1 comes i2 (the rule), which only the sequential member knows
    hist = [idx(["i0", "i1"]), idx(["i3", "i4"])]
    targets = sp.csr_matrix(
        (np.ones(2, np.float32), (np.arange(2), idx(["i2", "i5"]))), shape=(2, data.n_items)
    )
    valid = EvalSet(np.arange(2), hist, targets)
    # member 0 knows the rule; member 1 prefers items two steps *back* (wrong here)
    right = {"window": 1, "backward": 0.0, "last": 1}
    wrong = {"window": 2, "backward": 10.0, "alpha": 0.0, "last": 1}
    model = Blend(members=[["seqrules", right], ["seqrules", wrong]], grid_steps=4)
    model.fit(data, valid)
    table = model.selection_["valid_ndcg@10"]
    assert table["[0.0, 1.0]"] < 1.0  # the wrong member alone fails
    assert max(table.values()) == pytest.approx(1.0)
    assert model.weights_[0] > 0
    top, _ = model.recommend(hist, k=1)
    assert list(top[:, 0]) == list(idx(["i2", "i5"]))


def test_fixed_weights_save_and_load(tmp_path):
    data = _data()
    model = Blend(members=[["seqrules", {}], ["seqrules", {"window": 1}]], weights=[0.3, 0.7])
    model.fit(data)
    model.save(tmp_path / "b")
    loaded = Blend.load(tmp_path / "b")
    h = [np.array([0, 1]), np.array([3])]
    np.testing.assert_allclose(model.score(h), loaded.score(h), rtol=1e-6)
    np.testing.assert_allclose(loaded.weights_, [0.3, 0.7])


def test_blend_needs_members():
    with pytest.raises(ValueError):
        Blend().fit(_data())
