import numpy as np
import pytest

from shoprec.evaluation.cold_start import (
    cold_item_split,
    cold_user_split,
    evaluate_among,
    evaluate_scores,
    fixed_scorer,
    neighbour_popularity,
    random_scorer,
)
from shoprec.evaluation.protocols import make_split
from shoprec.models.content import ContentKNN
from tests.unit.features import catalog


@pytest.fixture(scope="module")
def data():
    return catalog.make_data(n_users=80, n_events=7)


def test_cold_items_are_entirely_out_of_training(data):
    s = cold_item_split(data, fraction=0.25, seed=1)
    assert len(np.intersect1d(s.cold_valid, s.cold_test)) == 0
    assert not np.isin(s.train.item_idx, s.cold).any()
    assert s.train.n_items == data.n_items  # still known to content models
    for h, row in zip(s.test.histories, s.test.targets, strict=True):
        assert not np.isin(h, s.cold).any() and len(h) > 0
        assert np.isin(row.indices, s.cold_test).all()
    assert len(s.test) > 0


def test_perfect_and_random_scorers_bracket_the_metric(data):
    s = cold_item_split(data, fraction=0.25, seed=1)
    oracle = lambda h, rows: s.test.targets[rows].toarray()  # noqa: E731
    perfect = evaluate_scores(oracle, s.test, s.cold_test, ks=(1, 10))
    assert perfect["HR@1"] == 1.0 and perfect["NDCG@10"] == 1.0
    flat = evaluate_scores(fixed_scorer(np.zeros(data.n_items)), s.test, s.cold_test, ks=(1,))
    assert flat["HR@1"] == 0.0  # ties count against the target
    rnd = evaluate_scores(random_scorer(data.n_items, 0), s.test, s.cold_test, ks=(1,))
    assert 0.0 < rnd["HR@1"] < 0.6


def test_content_model_finds_cold_items_on_the_known_answer_catalog(data):
    s = cold_item_split(data, fraction=0.5, seed=1)
    knn = ContentKNN(text_backend="tfidf", text_dim=16).fit(s.train)
    got = evaluate_among(knn, s.test, s.cold_test, ks=(1,))
    rnd = evaluate_scores(random_scorer(data.n_items, 0), s.test, s.cold_test, ks=(1,))
    assert got["HR@1"] > 0.9 and got["HR@1"] > 2 * rnd["HR@1"]
    npop = neighbour_popularity(knn.item_vectors_, s.train.item_popularity(), s.cold)
    assert (npop[s.cold] > 0).all()


def test_cold_users_see_their_first_n_events(data):
    s = cold_user_split(data, fraction=0.25, ns=(0, 1, 3), seed=0)
    seqs = data.sequences()
    assert not np.isin(s.train.user_idx, s.cold_users).any()
    for n, ev in s.cold.items():
        for u, h, row in zip(ev.users, ev.histories, ev.targets, strict=True):
            assert np.array_equal(h, seqs[u][:n]) and row.indices.tolist() == [seqs[u][n]]
    assert not np.isin(s.warm_test.users, s.cold_users).any() and len(s.warm_test) > 0
    for u, h, row in zip(
        s.cold_last.users, s.cold_last.histories, s.cold_last.targets, strict=True
    ):
        assert np.array_equal(h, seqs[u][:-1]) and row.indices.tolist() == [seqs[u][-1]]


def test_registered_protocols_give_harness_splits(data):
    split = make_split(data, "cold-items")
    assert split.protocol == "cold-items" and len(split.test) > 0
    three = make_split(data, "cold-users-3")
    assert {len(h) for h in three.test.histories} == {3}
    mixed = make_split(data, "cold-users")
    assert sorted({len(h) for h in mixed.test.histories}) == [0, 1, 3, 5]
    assert mixed.test.targets.shape == (len(mixed.test), data.n_items)
