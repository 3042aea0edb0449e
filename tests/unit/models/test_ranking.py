"""Full-ranking primitives. Regression: with several targets per row, two targets used to share
rank 0 (each ranked as if the others were absent), so NDCG could exceed 1 under the temporal
and random protocols."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from shoprec.models.ranking import ndcg_hr_at_k, target_ranks

EMPTY = [np.zeros(0, dtype=np.int64)]


def row(targets, n):
    m = np.zeros((1, n), dtype=np.float32)
    m[0, targets] = 1
    return sp.csr_matrix(m)


def test_several_targets_take_distinct_positions():
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.0]], dtype=np.float32)
    ranks = target_ranks(scores, EMPTY, row([0, 1, 2], 5))
    assert ranks[0].tolist() == [0, 1, 2]
    assert ndcg_hr_at_k(ranks, np.array([3]), 10) == (1.0, 1.0)


def test_history_is_masked_and_ties_count_against_targets():
    scores = np.array([[5.0, 1.0, 1.0, 0.5]], dtype=np.float32)
    assert target_ranks(scores, [np.array([0])], row([2], 4))[0].tolist() == [1]
    assert target_ranks(np.zeros((1, 4), np.float32), EMPTY, row([1], 4))[0].tolist() == [3]


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=12), st.data())
def test_ranks_are_list_positions(values, data):
    scores = np.array([values], dtype=np.float32)
    n = scores.shape[1]
    tgt = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
    ranks = target_ranks(scores, EMPTY, row(tgt, n))[0]
    assert len(set(ranks.tolist())) == len(tgt)  # one position each
    assert ranks.min() >= 0 and ranks.max() < n
    ndcg, hr = ndcg_hr_at_k([ranks], np.array([len(tgt)]), 5)
    assert 0.0 <= ndcg <= 1.0 + 1e-9 and hr in (0.0, 1.0)
    # a perfect ordering puts the targets at the top
    perfect = np.zeros((1, n), np.float32)
    perfect[0, tgt] = 1.0
    assert sorted(target_ranks(perfect, EMPTY, row(tgt, n))[0].tolist()) == list(range(len(tgt)))
