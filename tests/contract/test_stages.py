"""One suite for every pipeline stage: each retriever and each re-ranker honours its contract.

Adding an implementation is one line in `RETRIEVERS` or `RERANKERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shoprec.models import registry
from shoprec.pipeline import Campaign, PipelineConfig, RecRequest, build_pipeline
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.model_retrievers import ContentRetriever, ModelRetriever
from shoprec.pipeline.persist import RETRIEVER_KINDS
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.retrievers import ItemToItemRetriever, Retriever, TrendingRetriever
from tests.unit.pipeline.fixtures import make_data

registry.register("test_next_item", "tests.unit.pipeline.fixtures:NextItemModel")


@pytest.fixture(scope="module")
def shop() -> Pipeline:
    data = make_data()
    p = build_pipeline(data, PipelineConfig(ranker="weighted", exploration_slots=1))
    p.data = data  # type: ignore[attr-defined]
    return p


def _content(p: Pipeline) -> Retriever:
    # vectors: one-hot category, so content neighbours share a category
    codes = p.catalog.category
    vec = np.zeros((len(codes), int(codes.max()) + 1), np.float32)
    vec[np.arange(len(codes)), codes] = 1.0
    return ContentRetriever(vec)


RETRIEVERS: dict[str, Callable[[Pipeline], Retriever]] = {
    "trending": lambda p: TrendingRetriever().fit(p.data, p.catalog),
    "item_to_item": lambda p: ItemToItemRetriever().fit(p.data, p.catalog),
    "model": lambda p: ModelRetriever("test_next_item").fit(p.data, p.catalog),
    "content": _content,
}


@pytest.fixture(params=sorted(RETRIEVERS))
def retriever(request, shop) -> Retriever:
    return RETRIEVERS[request.param](shop)


def _check_candidates(c: Candidates, name: str, n: int, n_items: int) -> None:
    assert len(c) <= n
    assert c.items.dtype == np.int64
    assert len(np.unique(c.items)) == len(c), "duplicates"
    assert ((c.items >= 0) & (c.items < n_items)).all()
    if len(c) == 0:  # nothing to say (e.g. no history): no columns needed
        return
    assert c.sources == [name]
    assert np.all(np.diff(c.scores) <= 1e-9), "best first"
    assert np.array_equal(c.source_ranks[name], np.arange(len(c)))
    assert len(c.evidence[name]) == len(c)


def test_retrieve_contract(retriever, shop):
    q = shop.query_from_indices(shop.catalog.items.to_index(["c2_3", "c2_4"]), 10)
    c = retriever.retrieve(q, 7)
    _check_candidates(c, retriever.name, 7, len(shop.catalog))
    assert len(c) > 0
    for pos in range(len(c)):
        text = retriever.explain(
            int(c.evidence[retriever.name][pos]), int(c.items[pos]), q, shop.catalog
        )
        assert isinstance(text, str) and text


def test_cold_query_never_fails(retriever, shop):
    c = retriever.retrieve(shop.query_from_indices(np.zeros(0, np.int64), 10), 5)
    _check_candidates(c, retriever.name, 5, len(shop.catalog))


def test_similar_contract(retriever, shop):
    item = shop.catalog.items.get("c2_3")
    c = retriever.similar(item, 5)
    _check_candidates(c, retriever.name, 5, len(shop.catalog))
    assert item not in c.items


def test_kind_is_registered_and_save_load_round_trips(retriever, shop, tmp_path):
    assert RETRIEVER_KINDS[retriever.kind] is type(retriever)
    retriever.save(tmp_path / "r")
    again = type(retriever).load(tmp_path / "r")
    q = shop.query_from_indices(shop.catalog.items.to_index(["c4_1", "c4_2"]), 10)
    a, b = retriever.retrieve(q, 6), again.retrieve(q, 6)
    assert np.array_equal(a.items, b.items) and np.allclose(a.scores, b.scores)


# ------------------------------------------------------------------ re-rankers
RERANKERS = ["rules", "diversity", "exploration", "promotion", "fallback"]


@pytest.fixture(params=RERANKERS)
def stage(request, shop):
    shop.set_campaigns([Campaign("c0_0", "pin", slot=0), Campaign("c5_9", "pin", slot=1)])
    return next(s for s in shop.rerankers if s.name == request.param)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"k": 6, "history": ["c2_3"], "diversity": 0.7},
        {"k": 10, "history": ["c1_1", "c1_2"], "min_price": 20, "max_price": 60},
        {"k": 5, "history": ["c3_3"], "category": "Dept1", "exclude_items": ("c3_4",)},
    ],
)
def test_rerank_never_shows_a_forbidden_item(stage, shop, request_kwargs):
    q = shop.resolve(RecRequest(**request_kwargs))
    cands = shop.rerankers[0].rerank(q, shop.ranker.rank(q, shop.candidates(q)))
    out = stage.rerank(q, cands)
    assert len(np.unique(out.items)) == len(out), "duplicates"
    assert shop.rules.allowed(q, out.items).all()
    assert set(out.items.tolist()) >= set(cands.items[: q.k].tolist()) or stage.name in (
        "diversity",
        "exploration",
        "promotion",
        "fallback",
    )


def test_rerank_keeps_order_of_untouched_items(stage, shop):
    q = shop.resolve(RecRequest(k=8, history=["c2_3"], diversity=0.0))
    cands = shop.rerankers[0].rerank(q, shop.ranker.rank(q, shop.candidates(q)))
    out = stage.rerank(q, cands)
    moved = set(out.adjustments)  # items a stage moved say so; the others keep their order
    kept = [i for i in out.items.tolist() if i in set(cands.items.tolist()) and i not in moved]
    original = [i for i in cands.items.tolist() if i in set(kept)]
    assert kept[: len(original)] == original[: len(kept)]
