"""Vector search (exact scan and faiss HNSW), the retrievers that use it, and the serve-time
shortcuts that must give the same answers as the plain computations (issue 4)."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.pipeline.candidates import Candidates, merge
from shoprec.pipeline.cold_start import (
    OnboardingRetriever,
    diversified_popular,
    share_vector_index,
)
from shoprec.pipeline.model_retrievers import ContentRetriever
from shoprec.pipeline.new_items import NewItemsRetriever
from shoprec.pipeline.retrievers import top_n
from shoprec.pipeline.rules import member
from shoprec.pipeline.vector_index import VectorIndex, neighbour_lists, resolve_kind


def clustered(n: int = 3000, d: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors around 20 centroids, shape (n, d)."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(20, d))
    v = centroids[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_resolve_kind_switches_to_hnsw_at_the_threshold():
    assert resolve_kind("auto", 49_999, 50_000) == "exact"
    assert resolve_kind("auto", 50_000, 50_000) == "hnsw"
    assert resolve_kind("exact", 10**7) == "exact"
    with pytest.raises(ValueError, match="vector index"):
        resolve_kind("annoy", 10)


def test_exact_index_is_the_scan_with_exclusions_and_filter():
    v = clustered()
    q = v[7]
    exclude = np.array([7, 3, 11])
    allowed = np.arange(len(v)) % 2 == 1
    items, scores = VectorIndex(v, "exact").search(q, 50, exclude, allowed)
    s = v @ q
    s[exclude] = -np.inf
    s[~allowed] = -np.inf
    assert items.tolist() == top_n(s, 50).tolist()
    assert np.allclose(scores, s[items])


def test_hnsw_finds_the_true_neighbours_and_honours_filters():
    v = clustered()
    index = VectorIndex(v, "hnsw", ef_search=128)
    rng = np.random.default_rng(1)
    recall = []
    for qi in rng.integers(0, len(v), 20):
        exact = set(top_n(v @ v[qi], 50).tolist())
        items, scores = index.search(v[qi], 50)
        recall.append(len(exact & set(items.tolist())) / 50)
        assert np.all(np.diff(scores) <= 1e-6)  # best first
    assert np.mean(recall) > 0.9
    allowed = np.arange(len(v)) % 3 == 0
    items, _ = index.search(v[5], 40, exclude=np.array([6, 9]), allowed=allowed)
    assert len(items) == 40 and allowed[items].all() and not np.isin(items, [6, 9]).any()


def test_hnsw_scores_rows_updated_after_the_build_exactly():
    v = clustered()
    index = VectorIndex(v, "hnsw")
    q = -v[0]  # far from item 0's cluster
    index.update(np.array([0, len(v)]), np.stack([q, q]))  # an item changed, one added
    items, scores = index.search(q, 5)
    assert sorted(items[:2].tolist()) == [0, len(v)]
    assert np.allclose(scores[:2], q @ q)
    # a stale row never comes back with its old (graph) vector
    items, _ = index.search(v[0], 20)
    assert 0 not in items.tolist()


def test_content_retriever_keeps_its_graph_through_save_and_load(tmp_path):
    v = clustered()
    r = ContentRetriever(v, index="hnsw")
    assert r.index_.kind == "hnsw"
    r.save(tmp_path / "r")
    back = ContentRetriever.load(tmp_path / "r")
    assert back.index_.kind == "hnsw" and back.index_.graph is not None
    a, _ = r.index_.search(v[3], 30)
    b, _ = back.index_.search(v[3], 30)
    assert a.tolist() == b.tolist()
    # auto: a small catalog keeps the exact scan
    assert ContentRetriever(v).index_.kind == "exact"


def _reference_round_robin(scores, groups, n, eligible=None):
    """The original loop: position within group, then group's first appearance."""
    order = np.argsort(-scores, kind="stable")
    if eligible is not None:
        order = order[eligible[order]]
    order = order[np.isfinite(scores[order])]
    g = np.asarray(groups)[order]
    _, first, inv = np.unique(g, return_index=True, return_inverse=True)
    within = np.zeros(len(order), dtype=np.int64)
    seen: dict[int, int] = {}
    for p, gi in enumerate(inv):
        within[p] = seen.get(gi, 0)
        seen[gi] = within[p] + 1
    return order[np.lexsort((first[inv], within))][:n]


def test_diversified_popular_matches_the_reference_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(1, 300))
        scores = rng.integers(0, 20, m).astype(float)  # many ties
        groups = rng.integers(0, 6, m)
        eligible = rng.random(m) < 0.8
        n = int(rng.integers(1, 60))
        got = diversified_popular(scores, groups, n, eligible)
        assert got.tolist() == _reference_round_robin(scores, groups, n, eligible).tolist()


class _Query:
    """The parts of `Query` the onboarding and new-item retrievers read."""

    def __init__(self, history, excluded, user=-1, context=None):
        self.history = np.asarray(history, np.int64)
        self.excluded = np.unique(np.asarray(excluded, np.int64))
        self.user = user
        self.request = type("R", (), {"context": context})()

    def recent(self, n):
        rev = self.history[::-1]
        _, first = np.unique(rev, return_index=True)
        return rev[np.sort(first)][:n]


def test_onboarding_shortcut_equals_the_full_round_robin():
    rng = np.random.default_rng(2)
    n_items = 500
    r = OnboardingRetriever(min_events=3)
    r.global_ = rng.integers(0, 30, n_items).astype(float)
    r.top_ = rng.integers(0, 7, n_items)
    r.paths_ = np.array([f"c{t}" for t in r.top_])
    r.segment_values_, r.segment_scores_, r.user_codes_ = {}, {}, {}
    for _ in range(20):
        hist = rng.integers(0, n_items, int(rng.integers(0, 3)))
        excluded = rng.integers(0, n_items, int(rng.integers(0, 40)))
        q = _Query(hist, np.concatenate([hist, excluded]))
        got = r.retrieve(q, 60)
        eligible = np.ones(n_items, bool)
        eligible[q.history] = False
        eligible[q.excluded] = False
        want = diversified_popular(r.global_, r.top_, 60, eligible)
        assert got.items.tolist() == want.tolist()
        assert np.allclose(got.scores, r.global_[want])


def test_new_items_through_the_shared_graph_are_new_and_close_to_the_scan():
    v = clustered()
    content = ContentRetriever(v, index="hnsw")
    new_items = NewItemsRetriever(v)
    new_items.is_new_ = np.arange(len(v)) % 2 == 0
    new_items.typical_ = v[:50].mean(axis=0)

    class _Pipe:
        retrievers = {"content": content, "new_items": new_items}

    q = _Query([4, 8, 15], [4, 8, 15, 16, 23])
    scan = new_items.retrieve(q, 40)
    share_vector_index(_Pipe())
    assert new_items._graph() is content.index_
    graph = new_items.retrieve(q, 40)
    assert new_items.is_new_[graph.items].all()
    assert not np.isin(graph.items, [4, 8, 15, 16, 23]).any()
    assert len(set(graph.items.tolist()) & set(scan.items.tolist())) >= 36
    # vectors that are not the content retriever's unit rows are never shared
    other = NewItemsRetriever(3 * v)
    _Pipe.retrievers = {"content": content, "new_items": other}
    share_vector_index(_Pipe())
    assert other._graph() is None


def test_member_is_isin_on_sorted_values():
    rng = np.random.default_rng(3)
    for _ in range(30):
        values = np.unique(rng.integers(0, 50, int(rng.integers(0, 20))))
        items = rng.integers(-5, 60, 40)
        assert member(items, values).tolist() == np.isin(items, values).tolist()


def test_insert_keeps_what_other_sources_knew():
    a = Candidates.from_source("a", np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1]))
    b = Candidates.from_source("b", np.array([3, 4]), np.array([0.7, 0.2]))
    c = merge([a, b]).sorted()
    out = c.insert(0, 3, "promotion", ref=5)
    assert out.items.tolist()[0] == 3
    assert list(out.source_scores)[0] == "promotion"  # a row put first brings its column first
    assert out.source_scores["b"][0] == pytest.approx(0.7)
    assert out.evidence["promotion"][0] == 5
    assert np.isnan(out.source_scores["promotion"][1:]).all()
    assert len(out) == len(c)


def test_posted_item_is_recommendable_at_once_with_hnsw(tmp_path):
    """The cold-start catalog with every vector source on HNSW graphs (forced): a posted
    item is found through the graph's exact overlay, also after an artifact round trip."""
    from shoprec.features.fusion import ContentEncoder
    from shoprec.pipeline import PipelineConfig, RecRequest, load_artifact, save_artifact
    from shoprec.pipeline.build import build_pipeline
    from shoprec.pipeline.cold_start import attach_cold_start
    from shoprec.types import Item
    from tests.unit.features import catalog
    from tests.unit.pipeline.test_cold_start import _data

    data = _data()
    cfg = PipelineConfig(item_to_item=False, exploration_slots=0, vector_index="hnsw")
    pipe = build_pipeline(data, cfg)
    enc = ContentEncoder(text_backend="tfidf", text_dim=16).fit(data.item_table)
    attach_cold_start(pipe, data, enc)
    assert pipe.retrievers["content"].index_.kind == "hnsw"
    assert pipe.retrievers["new_items"]._graph() is pipe.retrievers["content"].index_
    hist = data.items.to_index([catalog.item_id(3, j) for j in range(3)])
    request = RecRequest(k=40, history=tuple(data.items.to_ids(hist)))
    before = [r.item_id for r in pipe.recommend(request)]
    back = load_artifact(save_artifact(pipe, tmp_path / "art"))
    assert back.retrievers["new_items"]._graph() is back.retrievers["content"].index_
    assert [r.item_id for r in back.recommend(request)] == before
    new = Item(
        "fresh-tent",
        title="yellow camping tent model 42",
        description="A yellow camping tent",
        category="Outdoor > Camping",
        brand="Brand30",
        price=41.0,
        stock=3,
    )
    for p in (pipe, back):
        p.update_items([new])
        idx = p.catalog.items.get("fresh-tent")
        assert idx in p.retrievers["content"].index_.stale
        cands = p.retrievers["new_items"].retrieve(p.query_from_indices(hist, k=5), 3)
        assert idx in cands.items
        sim = p.retrievers["content"].similar(idx, 5)
        assert all(i.startswith("k3_") for i in data.items.to_ids(sim.items))
        assert "fresh-tent" in [r.item_id for r in p.recommend(request)]


def test_neighbour_lists_are_each_rows_nearest_rows():
    v = clustered(800)
    allowed = np.arange(len(v)) % 3 == 0
    for filt in (None, allowed):
        lists = neighbour_lists(VectorIndex(v, "exact"), 20, allowed=filt)
        assert lists.shape == (len(v), 20) and lists.dtype == np.int32
        for row in (0, 5, 401):
            s = v @ v[row]
            s[row] = -np.inf
            if filt is not None:
                s[~filt] = -np.inf
            assert lists[row].tolist() == top_n(s, 20).tolist()
        graph = neighbour_lists(VectorIndex(v, "hnsw"), 20, allowed=filt)
        assert (graph >= 0).all() and not (graph == np.arange(len(v))[:, None]).any()
        if filt is not None:
            assert filt[graph].all()
        overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(graph, lists, strict=True)])
        assert overlap > 0.9


def test_content_lists_score_the_union_exactly_and_fall_back_for_unlisted_items(tmp_path):
    v = clustered(500)
    search = ContentRetriever(v, index="exact")
    # lists as long as the catalog: the union is every item, so the answer is the scan's
    full = ContentRetriever(v, index="exact", neighbours=len(v) - 1)
    q = _Query([4, 8, 15], [])
    a, b = search.retrieve(q, 40), full.retrieve(q, 40)
    assert a.items.tolist() == b.items.tolist()
    assert np.allclose(a.source_scores["content"], b.source_scores["content"])
    # short lists: candidates come from the recent items' lists only, scored exactly
    short = ContentRetriever(v, index="exact", neighbours=10)
    c = short.retrieve(q, 40)
    union = set(short.lists_[[15, 8, 4]].ravel().tolist()) - {4, 8, 15}
    assert set(c.items.tolist()) == union
    profile = short._query_vector(q.recent(short.recent))
    assert np.allclose(c.source_scores["content"], v[c.items] @ profile, atol=1e-6)
    # an item added after the lists is scored on every request; as a seed it is searched
    short.set_vectors(v[15:16], np.array([500]))
    assert 500 in short.retrieve(q, 40).items
    seeded = short.retrieve(_Query([4, 500], []), 40)
    scan, _ = short.index_.search(short._query_vector(np.array([500, 4])), 40, np.array([4, 500]))
    assert seeded.items.tolist() == scan.tolist()
    short.save(tmp_path / "r")
    back = ContentRetriever.load(tmp_path / "r")
    assert np.array_equal(back.lists_, short.lists_)
    assert back.retrieve(q, 40).items.tolist() == short.retrieve(q, 40).items.tolist()


def test_new_item_lists_with_every_new_item_equal_the_scan():
    v = clustered(600)
    is_new = np.arange(len(v)) % 2 == 0
    plain, listed = NewItemsRetriever(v), NewItemsRetriever(v, neighbours=int(is_new.sum()))
    for r in (plain, listed):
        r.is_new_ = is_new
        r.typical_ = v[:50].mean(axis=0)
    listed.build_neighbours()
    assert is_new[listed.lists_[listed.lists_ >= 0]].all()
    q = _Query([4, 8, 15], [4, 8, 15, 16, 22])
    assert listed.retrieve(q, 30).items.tolist() == plain.retrieve(q, 30).items.tolist()
    # a posted item is new and scored at once
    for r in (plain, listed):
        r.set_vectors(v[8:9], np.array([600]))
    assert 600 in listed.retrieve(q, 30).items
    assert listed.retrieve(q, 30).items.tolist() == plain.retrieve(q, 30).items.tolist()


def test_sorted_unique_is_np_unique():
    from shoprec.pipeline.rules import sorted_unique

    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 500):
        a = rng.integers(0, 50, size)
        assert sorted_unique(a).tolist() == np.unique(a).tolist()
        assert sorted_unique(a).dtype == np.unique(a).dtype
