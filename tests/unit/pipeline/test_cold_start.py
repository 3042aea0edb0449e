"""Onboarding and new-item retrievers, and content refresh for posted items (known answers from
tests/unit/features/catalog.py: four categories with their own words and images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.features.fusion import ContentEncoder
from shoprec.pipeline import PipelineConfig, RecRequest, load_artifact, save_artifact
from shoprec.pipeline.build import build_pipeline
from shoprec.pipeline.cold_start import (
    OnboardingRetriever,
    SegmentPopularity,
    attach_cold_start,
    diversified_popular,
    install_content_hook,
    refresh_content,
)
from shoprec.pipeline.new_items import NewItemsRetriever
from shoprec.types import Item
from tests.unit.features import catalog


def _data() -> InteractionData:
    """Catalog users, plus attributes: the young prefer category 2, the old category 3."""
    data = catalog.make_data(n_users=80)
    users = pd.DataFrame({"user_id": data.users.to_list()})
    likes = np.array([int(u[1:]) % catalog.N_CATS for u in users["user_id"]])
    users["age"] = np.where(likes == 2, 22, np.where(likes == 3, 61, 40))
    data.user_table = users
    return data


@pytest.fixture(scope="module")
def built():
    data = _data()
    pipe = build_pipeline(data, PipelineConfig(item_to_item=False, exploration_slots=0))
    enc = ContentEncoder(text_backend="tfidf", text_dim=16).fit(data.item_table)
    attach_cold_start(pipe, data, enc)
    return data, pipe, enc


def test_diversified_popular_round_robins_categories():
    scores = np.array([9.0, 8, 7, 6, 5, 4])
    groups = np.array([0, 0, 0, 1, 1, 2])
    assert diversified_popular(scores, groups, 6).tolist() == [0, 3, 5, 1, 4, 2]
    eligible = np.array([False, True, True, True, True, True])
    assert diversified_popular(scores, groups, 3, eligible).tolist() == [1, 3, 5]


def test_segment_popularity_follows_user_attributes():
    data = _data()
    seg = SegmentPopularity(["age"], smoothing=1.0).fit(data)
    cat_of = np.array([int(i[1]) for i in data.items.to_list()])
    assert cat_of[np.argmax(seg.scores({"age": 20}))] == 2
    assert cat_of[np.argmax(seg.scores({"age": 70}))] == 3
    assert np.allclose(seg.scores({}), seg.global_)


def test_onboarding_uses_segment_and_stated_interests(built):
    data, pipe, _ = built
    ob = pipe.retrievers["onboarding"]
    young = pipe.resolve(RecRequest(k=5, context={"user": {"age": 19}}))
    cands = ob.retrieve(young, 4)
    assert int(data.items.to_ids(cands.items[:1])[0][1]) == 2
    assert (cands.evidence["onboarding"] == 1).all()
    keen = pipe.resolve(RecRequest(k=5, context={"interests": ["Home"]}))
    cands = ob.retrieve(keen, 6)
    kinds = [int(i[1]) for i in data.items.to_ids(cands.items)]
    assert kinds[:6] == [1] * 6 and (cands.evidence["onboarding"] == 2).all()
    anon = ob.retrieve(pipe.resolve(RecRequest(k=8)), 8)
    assert len({int(i[1]) for i in data.items.to_ids(anon.items[:4])}) == 4  # all categories
    long = pipe.query_from_indices(np.arange(5), k=5)
    assert len(ob.retrieve(long, 5)) == 0  # enough events: the models take over


def test_new_items_retriever_finds_cold_items_like_the_history(built):
    data, pipe, _ = built
    ni = pipe.retrievers["new_items"]
    assert isinstance(ni, NewItemsRetriever)
    hist = data.items.to_index([catalog.item_id(3, j) for j in range(3)])
    cands = ni.retrieve(pipe.query_from_indices(hist, k=5), 2)
    assert set(cands.items) == set(catalog.cold_index(data, 3))
    assert ni.retrieve(pipe.query_from_indices(np.zeros(0, np.int64), k=5), 3).items.size == 3


def test_posted_item_is_recommendable_at_once(built):
    data, pipe, enc = built
    new = Item(
        "fresh-tent",
        title="yellow camping tent model 42",
        description="A yellow camping tent",
        category="Outdoor > Camping",
        brand="Brand30",
        price=41.0,
        stock=3,
    )
    pipe.update_items([new])  # the hook computes its content vector at once
    idx = [pipe.catalog.items.get("fresh-tent")]
    assert idx == [data.n_items]
    assert pipe.retrievers["new_items"].vectors_.shape[0] == data.n_items + 1
    assert pipe.retrievers["content"].vectors_[idx[0]].any()
    hist = data.items.to_index([catalog.item_id(3, j) for j in range(3)])
    cands = pipe.retrievers["new_items"].retrieve(pipe.query_from_indices(hist, k=5), 3)
    assert idx[0] in cands.items
    sim = pipe.retrievers["content"].similar(idx[0], 5)
    assert all(i.startswith("k3_") for i in data.items.to_ids(sim.items))
    recs = pipe.recommend(RecRequest(k=40, history=tuple(data.items.to_ids(hist))))
    assert "fresh-tent" in [r.item_id for r in recs]


def test_refresh_content_embeds_only_what_changed(built):
    data, pipe, enc = built
    before = enc.cache_.misses
    same = data.item_table.iloc[[0, 1]]
    assert refresh_content(pipe, same) == [0, 1]
    assert enc.cache_.misses == before  # unchanged items: cache hits only
    changed = same.copy()
    changed["title"] = ["red leather boots model 0 limited", "red trail sneakers model 1 v2"]
    refresh_content(pipe, changed)
    assert enc.cache_.misses == before + 2


def test_cold_start_retrievers_survive_the_artifact(built, tmp_path):
    data, pipe, _ = built
    save_artifact(pipe, tmp_path)
    again = load_artifact(tmp_path)
    assert again.retrievers["new_items"].encoder_ is not None
    install_content_hook(again)
    again.update_items(
        [Item("after-load", title="blue ceramic mug model 5", category="Home > Kitchen")]
    )
    j = again.catalog.items.get("after-load")
    sim = again.retrievers["content"].similar(j, 3)
    assert all(i.startswith("k1_") for i in again.catalog.items.to_ids(sim.items))
    for name in ("onboarding", "new_items"):
        assert type(again.retrievers[name]) is type(pipe.retrievers[name])
    q = again.resolve(RecRequest(k=5, context={"user": {"age": 19}}))
    a = again.retrievers["onboarding"].retrieve(q, 5)
    b = pipe.retrievers["onboarding"].retrieve(
        pipe.resolve(RecRequest(k=5, context={"user": {"age": 19}})), 5
    )
    assert a.items.tolist() == b.items.tolist()


def test_onboarding_refit_is_not_needed_for_a_new_category_item(built):
    data, pipe, enc = built
    ob = pipe.retrievers["onboarding"]
    assert isinstance(ob, OnboardingRetriever)
    assert ob.paths_[data.items.get("k1_0")] == "Home > Kitchen"
