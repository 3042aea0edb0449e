"""Metrics against hand-computed values, and properties that must hold for any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.evaluation import metrics as M
from shoprec.models.ranking import ndcg_hr_at_k, target_ranks

LOG2 = math.log2


def test_accuracy_hand_computed() -> None:
    # row 0: target at rank 0; row 1: rank 3; row 2: rank 12; row 3: two targets at 1 and 5
    ranks = [np.array([0]), np.array([3]), np.array([12]), np.array([1, 5])]
    m = M.summarise(M.accuracy_per_row(ranks, np.array([1, 1, 1, 2]), ks=(5, 10)))
    assert m["HR@5"] == pytest.approx(3 / 4)  # rows 0, 1, 3
    assert m["HR@10"] == pytest.approx(3 / 4)
    ndcg5_row3 = (1 / LOG2(3)) / (1 + 1 / LOG2(3))  # rank 5 is outside the top 5
    assert m["NDCG@5"] == pytest.approx((1 + 1 / LOG2(5) + 0 + ndcg5_row3) / 4)
    ndcg10_row3 = (1 / LOG2(3) + 1 / LOG2(7)) / (1 + 1 / LOG2(3))
    assert m["NDCG@10"] == pytest.approx((1 + 1 / LOG2(5) + 0 + ndcg10_row3) / 4)
    assert m["MRR"] == pytest.approx((1 + 1 / 4 + 1 / 13 + 1 / 2) / 4)
    assert m["P@5"] == pytest.approx((1 / 5 + 1 / 5 + 0 + 1 / 5) / 4)
    assert m["R@10"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert m["R@5"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)


def test_target_ranks_ties_count_against_target_and_history_is_masked() -> None:
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.7]], dtype=np.float32)
    targets = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 5))
    # item 0 (0.9) is history and masked; item 4 (0.7) is above; item 1 ties: rank 2
    (r,) = target_ranks(scores, [np.array([0])], targets)
    assert r.tolist() == [2]
    assert ndcg_hr_at_k([r], np.array([1]), 2) == (0.0, 0.0)


def test_constant_model_gets_no_credit() -> None:
    scores = np.zeros((3, 50), dtype=np.float32)
    targets = sp.csr_matrix((np.ones(3), ([0, 1, 2], [4, 17, 30])), shape=(3, 50))
    ranks = target_ranks(scores, [np.array([], dtype=np.int64)] * 3, targets)
    assert M.summarise(M.accuracy_per_row(ranks, np.ones(3)))["HR@20"] == 0.0


@st.composite
def ranked_rows(draw):
    n_items = draw(st.integers(5, 60))
    rows = draw(st.integers(1, 12))
    ranks = []
    for _ in range(rows):
        n_t = draw(st.integers(1, 3))
        ranks.append(
            np.array(
                draw(st.lists(st.integers(0, n_items - 1), min_size=n_t, max_size=n_t, unique=True))
            )
        )
    return ranks


@settings(max_examples=60, deadline=None)
@given(ranked_rows())
def test_properties_bounds_and_monotone_in_k(ranks) -> None:
    n_t = np.array([len(r) for r in ranks])
    prev = None
    for k in (1, 3, 5, 10, 20):
        m = M.summarise(M.accuracy_per_row(ranks, n_t, ks=(k,)))
        for name, v in m.items():
            assert 0.0 <= v <= 1.0 + 1e-12, name
        if prev is not None:
            assert m[f"HR@{k}"] >= prev["HR"] - 1e-12
            assert m[f"R@{k}"] >= prev["R"] - 1e-12
        prev = {"HR": m[f"HR@{k}"], "R": m[f"R@{k}"]}
        assert m[f"R@{k}"] <= m[f"HR@{k}"] + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 15))
def test_perfect_model_scores_one(n_targets: int, k: int) -> None:
    # targets occupy ranks 0..n_targets-1: every metric is 1 when k >= n_targets
    ranks = [np.arange(n_targets)]
    m = M.summarise(M.accuracy_per_row(ranks, np.array([n_targets]), ks=(k,)))
    assert m[f"NDCG@{k}"] == pytest.approx(1.0)
    assert m[f"HR@{k}"] == 1.0 and m["MRR"] == 1.0
    assert m[f"R@{k}"] == pytest.approx(min(1.0, k / n_targets))


def test_coverage_exposure_gini() -> None:
    topk = np.array([[0, 1], [0, 2], [0, 1]])
    assert M.catalog_coverage(topk, 10) == pytest.approx(0.3)
    exp = M.exposure(topk, 4)
    assert exp.tolist() == [3, 2, 1, 0]
    assert M.gini(np.ones(7)) == pytest.approx(0.0)
    assert M.gini(np.array([0, 0, 0, 5.0])) == pytest.approx(0.75)  # (n - 1) / n for one holder
    # hand-computed: sorted [0,1,2,3], total 6: G = (n + 1 - 2 * sum(cum/total)) / n
    assert M.gini(exp) == pytest.approx((5 - 2 * (0 + 1 / 6 + 3 / 6 + 1)) / 4)


def test_novelty_and_average_popularity() -> None:
    pop = np.array([99.0, 9.0, 0.0])
    topk = np.array([[0, 1], [1, 2]])
    assert M.average_popularity(topk, pop) == pytest.approx((99 + 9 + 9 + 0) / 4)
    # p = (pop + 1) / (n_users + 1) with n_users = 99: 1, 0.1, 0.01
    assert M.novelty(topk, pop, 99) == pytest.approx((0 + LOG2(10) + LOG2(10) + LOG2(100)) / 4)


def test_intra_list_diversity_categories_and_embeddings() -> None:
    cats = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=float))
    # list [0, 1]: same category -> 0; list [0, 2]: different -> 1; [0, 3]: no attrs -> 1
    assert M.intra_list_diversity(np.array([[0, 1]]), cats) == pytest.approx(0.0)
    assert M.intra_list_diversity(np.array([[0, 2]]), cats) == pytest.approx(1.0)
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), cats) == pytest.approx(2 / 3)
    assert M.intra_list_diversity(np.array([[0, 3]]), cats) == pytest.approx(1.0)
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    # cosines: (0,1)=0, (0,2)=(1,2)=1/sqrt2; mean distance = 1 - (2/sqrt2)/3
    got = M.intra_list_diversity(np.array([[0, 1, 2]]), emb)
    assert got == pytest.approx(1 - (2 / math.sqrt(2)) / 3)
    assert got == pytest.approx(M.intra_list_diversity(np.array([[0, 1, 2]]), sp.csr_matrix(emb)))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_ild_matches_pairwise_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(12, 4))
    topk = np.stack([rng.permutation(12)[:5] for _ in range(3)])
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    want = np.mean(
        [
            np.mean(
                [1 - u[a] @ u[b] for i, a in enumerate(row) for j, b in enumerate(row) if i != j]
            )
            for row in topk
        ]
    )
    assert M.intra_list_diversity(topk, emb) == pytest.approx(want)


def test_attribute_vectors_from_item_table() -> None:
    import pandas as pd

    table = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "tags": [["x", "y"], ["x"], []], "category": ["A", "A", ""]}
    )
    v = M.attribute_vectors(table, 3)
    assert v.shape == (3, 3)  # tags=x, tags=y, category=A
    assert v.sum(axis=1).A1.tolist() == [3, 2, 0]


def test_slices() -> None:
    masks = M.history_length_slices(np.array([0, 4, 5, 19, 20, 70]))
    assert masks["hist[0,5)"].tolist() == [True, True, False, False, False, False]
    assert masks["hist[50,inf)"].tolist() == [False] * 5 + [True]
    assert sum(m.sum() for m in masks.values()) == 6
    tail = M.long_tail_items(np.array([10.0, 1, 1, 1, 5]), head_share=0.4)
    assert tail.tolist() == [False, True, True, True, False]
    targets = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=float))
    s = M.target_slices(targets, tail)
    assert s["target=tail"].tolist() == [False, True]
    assert s["target=head"].tolist() == [True, False]
