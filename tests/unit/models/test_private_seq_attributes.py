"""PrivateSeq with catalog attributes (`item_repr="attributes"`): public item tables built
right, scores are attribute query + item bias, a one-epoch fit, save/load, and a pattern that
only attributes can explain is learned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.private_seq_module import PrivateSeqModule, attribute_tables
from shoprec.models.ranking import evaluate_ndcg
from shoprec.models.torch_base import tag_csr

torch.set_num_threads(1)


def brand_data(n_users: int = 200, n_brands: int = 6, per_brand: int = 5, length: int = 6):
    """Each user shops one brand (random items of it); brands are item attributes, and the
    attribute "all" is shared by every item."""
    rng = np.random.default_rng(0)
    items = {f"b{b}i{i}": [f"brand{b}", "all"] for b in range(n_brands) for i in range(per_brand)}
    seqs = {}
    for u in range(n_users):
        b = int(rng.integers(n_brands))
        seqs[f"u{u}"] = [f"b{b}i{int(i)}" for i in rng.integers(0, per_brand, length)]
    return InteractionData.from_sequences(seqs, items)


def test_attribute_tables_are_idf_weighted_and_padded():
    # items: 0 -> {0, 1}, 1 -> {1}, 2 -> {} ; 3 items, 2 attributes
    indptr, indices = np.array([0, 2, 3, 3]), np.array([0, 1, 1])
    ids, w_in, w_out = attribute_tables(indptr, indices, n_items=3, n_tags=2)
    assert ids.tolist() == [[0, 1], [1, 2], [2, 2], [2, 2]]  # pad id 2; row 3 = pad item
    idf0, idf1 = np.log(4 / 2), np.log(4 / 3)
    np.testing.assert_allclose(w_in[0], [idf0 / (idf0 + idf1), idf1 / (idf0 + idf1)], rtol=1e-6)
    np.testing.assert_allclose(w_in[1], [1.0, 0.0])
    norm = np.hypot(idf0, idf1)
    np.testing.assert_allclose(w_out[0], [idf0 / norm, idf1 / norm], rtol=1e-6)
    assert float(w_in[2].sum()) == 0.0 and float(w_out[3].sum()) == 0.0


def test_scores_are_attribute_query_plus_item_bias():
    data = brand_data()
    attrs = tag_csr(data)
    torch.manual_seed(0)
    module = PrivateSeqModule(data.n_items, 6, 8, 2, 0.0, attrs=attrs, prior_last=3)
    with torch.no_grad():
        module.item_bias.weight.normal_()
    seqs = torch.tensor([[data.n_items, 0, 1], [2, 3, 4]])
    scores = module(seqs)
    assert scores.shape == (2, data.n_items)
    # recompute: a dense item x attribute matrix times the attribute-space query, plus bias
    dense = module.attr_matrix.to_dense()
    # the prior profile: decayed sum of the last 3 items' unit attribute rows
    profile = module._profile(seqs)
    last = seqs[0, -3:]
    want = torch.zeros(module.n_tags)
    for age, item in zip((2, 1, 0), last.tolist(), strict=True):
        if item < data.n_items:
            want += 0.6**age * dense[item]
    torch.testing.assert_close(profile[0], want)
    module.out_attr.weight.data.zero_()  # leaves the gated prior and the bias
    got = module(seqs)
    expect = (dense @ (module.gate.weight * profile).T).T + module.item_bias.weight[:, 0]
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


def test_one_epoch_fit_scores_and_round_trips(tmp_path):
    split = leave_one_out(brand_data())
    model = PrivateSeq(
        item_repr="attributes", id_dim=4, dim=8, heads=2, max_len=6, epochs=1, batch_size=32
    )
    model.fit(split.train)
    scores = model.score(split.test.histories[:5])
    assert scores.shape == (5, split.train.n_items) and np.isfinite(scores).all()
    model.save(tmp_path / "m")
    again = PrivateSeq.load(tmp_path / "m")
    assert again.item_repr == "attributes" and again.id_dim == 4
    np.testing.assert_allclose(again.score(split.test.histories[:5]), scores, rtol=1e-5)


def test_attributes_mode_needs_attributes():
    data = InteractionData.from_sequences({"u": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="attributes"):
        PrivateSeq(item_repr="attributes", epochs=1).fit(data)
    with pytest.raises(ValueError, match="item_repr"):
        PrivateSeq(item_repr="hashed", epochs=1).fit(data)


def test_attribute_model_learns_the_brand_pattern():
    """Next item = a random item of the user's brand: the best possible NDCG comes from
    ranking the brand's items first, which attributes (not the few ids seen) tell."""
    split = leave_one_out(brand_data())
    model = PrivateSeq(
        item_repr="attributes", dim=8, heads=2, max_len=6, epochs=15, batch_size=32, lr=1e-2
    )
    model.fit(split.train)
    # uniform over the 5 items of the brand (history not masked out of it entirely) ~ 0.4;
    # a random ranking of 30 items ~ 0.1
    assert evaluate_ndcg(model, split.test) > 0.3
