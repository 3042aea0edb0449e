"""ContentKNN and HybridMF on the known-answer catalog (tests/unit/features/catalog.py)."""

import numpy as np
import pytest

from shoprec.models.content import ContentKNN
from shoprec.models.hybrid import HybridMF
from tests.unit.features import catalog


@pytest.fixture(scope="module")
def data():
    return catalog.make_data()


@pytest.fixture(scope="module")
def knn(data):
    return ContentKNN(text_backend="tfidf", text_dim=16).fit(data, images=catalog.images())


@pytest.fixture(scope="module")
def hybrid(data):
    return HybridMF(factors=8, iterations=10, text_backend="tfidf", text_dim=16).fit(
        data, images=catalog.images()
    )


def _history(data, c: int) -> list[np.ndarray]:
    return [data.items.to_index([catalog.item_id(c, j) for j in range(4)])]


@pytest.mark.parametrize("model_name", ["knn", "hybrid"])
def test_cold_item_of_the_liked_category_ranks_above_unrelated_cold_items(
    request, data, model_name
):
    model = request.getfixturevalue(model_name)
    assert data.item_popularity()[catalog.cold_index(data, 0)].sum() == 0  # really cold
    all_cold = np.concatenate([catalog.cold_index(data, c) for c in range(catalog.N_CATS)])
    for c in range(catalog.N_CATS):
        idx, _ = model.recommend(_history(data, c), k=2, candidates=all_cold)
        assert set(idx[0]) == set(catalog.cold_index(data, c)), (model_name, c)


@pytest.mark.parametrize("model_name", ["knn", "hybrid"])
def test_cold_item_has_similar_items_of_its_kind(request, data, model_name):
    model = request.getfixturevalue(model_name)
    cold = catalog.cold_index(data, 2)[:1]
    idx, _ = model.similar_items(cold, k=5)
    cats = np.array(data.items.to_ids(idx[0]))
    assert all(i.startswith("k2_") for i in cats) and cold[0] not in idx[0]


def test_hybrid_projects_cold_items_into_factor_space(hybrid, data):
    assert hybrid.cold_.sum() == catalog.N_CATS * catalog.COLD
    assert hybrid.projection_.r2_ > 0.3
    # a cold item's factor is closest to the warm items of its category
    y = hybrid.item_factors_ / np.linalg.norm(hybrid.item_factors_, axis=1, keepdims=True)
    cold = catalog.cold_index(data, 1)[0]
    warm = np.flatnonzero(~hybrid.cold_)
    best = warm[np.argmax(y[warm] @ y[cold])]
    assert data.items.to_ids([best])[0].startswith("k1_")


def test_first_clicks_on_a_new_item_count_at_once(hybrid, knn, data):
    # a shopper whose only event is a click on a cold kettle gets kitchen items next
    kettle = catalog.cold_index(data, 1)[:1]
    for model in (hybrid, knn):
        idx, _ = model.recommend([kettle], k=5)
        assert all(i.startswith("k1_") for i in data.items.to_ids(idx[0]))


def test_add_items_makes_a_posted_item_recommendable(data):
    import pandas as pd

    model = ContentKNN(text_backend="tfidf", text_dim=16).fit(data)
    hyb = HybridMF(factors=8, iterations=5, text_backend="tfidf", text_dim=16).fit(data)
    new = pd.DataFrame(
        [
            {
                "item_id": "brand-new",
                "title": "green rose blush model 77",
                "description": "A green rose blush for makeup",
                "category": "Beauty > Makeup",
            }
        ]
    )
    idx = np.array([data.n_items])
    for m in (model, hyb):
        m.add_items(new, idx)
        assert m.n_items == data.n_items + 1
        scores = m.score(_history(data, 2))
        assert scores.shape == (1, data.n_items + 1)
        others = np.concatenate([catalog.cold_index(data, c) for c in (0, 1, 3)])
        assert scores[0, idx[0]] > scores[0, others].max()


def test_hybrid_keeps_learned_factors_when_warm_content_changes(hybrid, data):
    import copy

    h = copy.deepcopy(hybrid)
    warm = np.array([0])
    before = h.item_factors_[0].copy()
    h.add_items(catalog.items_frame().iloc[[0]], warm)
    assert np.allclose(h.item_factors_[0], before)


def test_save_and_load_round_trip(knn, data, tmp_path):
    knn.save(tmp_path / "m")
    again = ContentKNN.load(tmp_path / "m")
    h = _history(data, 3)
    assert np.allclose(again.score(h), knn.score(h))


def test_fit_refuses_data_without_item_table(data):
    from shoprec.data.interactions import InteractionData

    bare = InteractionData(
        data.users, data.items, data.user_idx, data.item_idx, data.timestamps, data.weights
    )
    with pytest.raises(ValueError):
        ContentKNN().fit(bare)
    plain = HybridMF(factors=4, iterations=3).fit(bare)  # no catalog: plain ALS + fold-in
    assert plain.score(_history(data, 0)).shape == (1, data.n_items)
    with pytest.raises(ValueError):
        ContentKNN(decay=0).fit(data)
