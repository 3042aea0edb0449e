import numpy as np
import pytest

from shoprec.data.idmap import IdMap
from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out, random_split, temporal_split


def seq_data():
    return InteractionData.from_sequences(
        {"u1": ["a", "b", "c", "d"], "u2": ["b", "c"], "u3": ["e"]}
    )


def test_leave_one_out_matches_protocol():
    d = seq_data()
    s = leave_one_out(d)
    items = d.items
    assert list(s.test.users) == [0, 1] and list(s.valid.users) == [0]
    assert items.to_ids(s.test.targets[0].indices) == ["d"] and items.to_ids(
        s.test.histories[0]
    ) == ["a", "b", "c"]
    assert items.to_ids(s.valid.targets[0].indices) == ["c"] and items.to_ids(
        s.valid.histories[0]
    ) == ["a", "b"]
    assert items.to_ids(s.test.histories[1]) == ["b"]
    train_seqs = s.train.sequences()
    assert [items.to_ids(x) for x in train_seqs] == [["a", "b"], ["b"], ["e"]]
    assert s.fingerprint == leave_one_out(seq_data()).fingerprint


def test_leave_one_out_uses_time_not_file_order():
    d = InteractionData(
        IdMap(["u"]),
        IdMap(["x", "y", "z"]),
        np.zeros(3),
        np.array([2, 0, 1]),
        np.array([30.0, 10.0, 20.0]),
        np.ones(3),
    )
    s = leave_one_out(d)
    assert list(s.test.targets[0].indices) == [2] and list(s.valid.targets[0].indices) == [1]


def test_temporal_and_random_are_disjoint_and_seeded():
    rng = np.random.default_rng(1)
    seqs = {f"u{u}": [f"i{j}" for j in rng.integers(0, 30, 20)] for u in range(40)}
    d = InteractionData.from_sequences(seqs)
    d.timestamps = rng.random(d.n_interactions) * 100
    t = temporal_split(d, 0.2, 0.1)
    assert t.train.timestamps.max() <= np.quantile(d.timestamps, 0.7) + 1e-9
    assert t.test.targets.nnz > 0
    r1, r2 = random_split(d, seed=3), random_split(d, seed=3)
    assert r1.fingerprint == r2.fingerprint and (r1.test.targets != r2.test.targets).nnz == 0
    assert r1.train.n_interactions + r1.valid.targets.sum() <= d.n_interactions
    with pytest.raises(ValueError):
        temporal_split(d, 0.0)
