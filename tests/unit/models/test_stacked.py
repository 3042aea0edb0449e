"""Stacked: a ranker learned on validation targets re-orders the blend's candidates."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.stacked import Stacked

N = 30


def _data(seed: int = 0) -> tuple[InteractionData, EvalSet]:
    """Users walk the successor rule i -> i + 1 (mod N); the validation target of each user
    is the successor of the last history item."""
    rng = np.random.default_rng(seed)
    seqs, hist, tgt = {}, [], []
    for u in range(300):
        start = int(rng.integers(N))
        seq = [(start + k) % N for k in range(int(rng.integers(4, 8)))]
        seqs[f"u{u}"] = [f"i{x}" for x in seq]
    data = InteractionData.from_sequences(seqs)
    idx = data.items.to_index
    for _ in range(200):
        start = int(rng.integers(N))
        h = [(start + k) % N for k in range(3)]
        hist.append(idx([f"i{x}" for x in h]))
        tgt.append(idx([f"i{(h[-1] + 1) % N}"])[0])
    targets = sp.csr_matrix(
        (np.ones(len(tgt), np.float32), (np.arange(len(tgt)), tgt)), shape=(len(tgt), data.n_items)
    )
    return data, EvalSet(np.arange(len(hist)), hist, targets)


MEMBERS = [["seqrules", {"window": 1, "backward": 0.0, "last": 1}], ["itemknn", {}]]


def test_ranker_learns_from_validation_and_puts_candidates_first():
    data, valid = _data()
    # the blend is popularity alone; the transition member (weight 0) is only a feature,
    # which the ranker must learn to use
    members = [MEMBERS[0], ["popularity", {}]]
    model = Stacked(
        members=members,
        weights=[0.0, 1.0],
        candidates=N,
        n_estimators=60,
        min_child_samples=5,
        n_jobs=1,
    )
    model.fit(data, valid)
    blend_top, _ = model.blend_.recommend(valid.histories[:20], k=1)
    assert (blend_top[:, 0] != valid.targets[:20].indices).mean() > 0.5
    assert model.ranker_info_["trained"] is True
    assert model.ranker_info_["holdout_ndcg10_ranker"] > model.ranker_info_["holdout_ndcg10_blend"]
    assert model.ranker_info_["queries"] > 0
    scores = model.score(valid.histories[:20])
    assert scores.shape == (20, data.n_items)
    top = scores.argmax(axis=1)
    np.testing.assert_array_equal(top, valid.targets[:20].indices)


def test_candidates_come_from_the_blend_and_outrank_the_rest():
    data, valid = _data()
    model = Stacked(
        members=MEMBERS, weights=[0.0, 1.0], candidates=5, min_child_samples=5, n_jobs=1
    )
    model.fit(data, valid)
    hist = valid.histories[:20]
    _, cand, _ = model._features(hist)
    blend_top, _ = model.blend_.recommend(hist, k=5)
    for c, b, h in zip(cand, blend_top, hist, strict=True):
        assert set(c.tolist()) == set(b.tolist())
        assert not set(c.tolist()) & set(h.tolist())
    scores = model.score(hist)
    for c, s, h in zip(cand, scores, hist, strict=True):
        others = np.setdiff1d(np.arange(len(s)), np.concatenate([c, h]))
        assert s[c].min() > s[others].max()


def test_without_validation_it_is_the_blend():
    data, valid = _data()
    model = Stacked(members=MEMBERS).fit(data)
    assert model.ranker_ is None
    h = valid.histories[:5]
    np.testing.assert_allclose(model.score(h), model.blend_.score(h), rtol=1e-6)


def test_save_and_load_give_the_same_scores(tmp_path):
    data, valid = _data()
    model = Stacked(
        members=[MEMBERS[0], ["popularity", {}]],
        weights=[0.0, 1.0],
        candidates=N,
        n_estimators=20,
        min_child_samples=5,
        n_jobs=1,
    )
    model.fit(data, valid)
    model.save(tmp_path / "s")
    loaded = Stacked.load(tmp_path / "s")
    h = valid.histories[:10]
    np.testing.assert_allclose(model.score(h), loaded.score(h), rtol=1e-6)
    assert loaded.ranker_info_ == model.ranker_info_
    assert loaded.ranker_ is not None


def test_a_ranker_that_does_not_beat_the_blend_is_dropped():
    data, valid = _data()
    # the transition member alone already ranks every validation target first
    model = Stacked(
        members=MEMBERS, weights=[1.0, 0.0], candidates=5, min_child_samples=5, n_jobs=1
    )
    model.fit(data, valid)
    assert model.ranker_ is None
    assert model.ranker_info_["holdout_ndcg10_blend"] == 1.0
