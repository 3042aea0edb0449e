"""`Candidates` (columnar, lazy row gathers, `cut`), the top-k cut of `Pipeline.run` and the
exploration slot's Thompson draw."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shoprec.pipeline import Campaign, PipelineConfig, RecRequest, build_pipeline
from shoprec.pipeline.candidates import Candidates, concat, merge
from tests.unit.pipeline.fixtures import make_data


def _three() -> Candidates:
    a = Candidates.from_source("a", np.array([1, 2, 3, 7]), np.array([0.9, 0.5, 0.1, 0.05]))
    b = Candidates.from_source("b", np.array([3, 4]), np.array([0.7, 0.2]), np.array([11, 12]))
    c = Candidates.from_source("c", np.array([9, 1]), np.array([2.0, 1.0]), np.array([5, 6]))
    return merge([a, b, c])


def _rows(c: Candidates) -> list[tuple]:
    """Everything a row knows, per source by name (NaN as None), in list order."""

    def clean(v: float) -> float | None:
        return None if v != v else float(v)

    out = []
    for pos, item in enumerate(c.items.tolist()):
        per = {
            s: (
                clean(c.source_scores[s][pos]),
                clean(c.source_ranks[s][pos]),
                int(c.evidence[s][pos]),
            )
            for s in c.sources
        }
        out.append((item, float(c.scores[pos]), per))
    return out


def test_merge_keeps_each_sources_columns():
    m = _three()
    assert m.items.tolist() == [1, 2, 3, 4, 7, 9]
    assert m.sources == ["a", "b", "c"]
    assert m.source_scores["a"][[0, 1, 2, 4]].tolist() == [0.9, 0.5, 0.1, 0.05]
    assert np.isnan(m.source_scores["a"][[3, 5]]).all()
    assert m.source_ranks["c"][[0, 5]].tolist() == [1.0, 0.0]
    assert m.evidence["b"].tolist() == [-1, -1, 11, 12, -1, -1]
    assert m.evidence["a"].dtype == np.int64
    assert (m.scores == 0).all()


def test_dict_constructor_matches_columns():
    m = _three()
    again = Candidates(m.items, m.scores, m.source_scores, m.source_ranks, m.evidence)
    assert _rows(again) == _rows(m)


def test_lazy_take_chain_equals_gathered_take():
    m = _three()
    rng = np.random.default_rng(0)
    p1, p2 = rng.permutation(len(m)), np.array([4, 0, 2])
    lazy = m.take(p1).take(p2).head(2)
    gathered = Candidates(
        m.items[p1][p2][:2],
        m.scores[p1][p2][:2],
        {s: v[p1][p2][:2] for s, v in m.source_scores.items()},
        {s: v[p1][p2][:2] for s, v in m.source_ranks.items()},
        {s: v[p1][p2][:2] for s, v in m.evidence.items()},
    )
    assert _rows(lazy) == _rows(gathered)
    assert lazy.columns.shape == (3, 3, 2)


@pytest.mark.parametrize("position", [0, 1, 2, 5])
@pytest.mark.parametrize("item", [9, 4, 42])  # below the cut, inside it, unknown
def test_insert_on_a_cut_list_equals_insert_on_the_whole_list(position, item):
    m = _three().take(np.array([2, 0, 1, 4, 3, 5]))  # items 3 1 2 7 4 9
    whole = m.insert(position, item, "promotion", ref=8)
    cut = m.cut(3).insert(position, item, "promotion", ref=8)
    n = len(cut) if position <= 3 else 3  # past the cut, only the top 3 are the same
    assert _rows(cut)[:n] == _rows(whole)[:n]
    assert cut.sources == whole.sources
    # a second insert (e.g. a promotion after the exploration slot) too
    again_whole = whole.insert(1, 9, "exploration")
    again_cut = cut.insert(1, 9, "exploration")
    assert _rows(again_cut)[:3] == _rows(again_whole)[:3]


def test_insert_puts_a_first_row_source_first_and_keeps_adjustments():
    m = _three().sorted()
    m.note(3, "x")
    out = m.insert(0, 3, "b", score=5.0, ref=1)
    assert out.sources == ["b", "a", "c"]
    assert out.items[0] == 3 and out.scores[0] == 5.0 and len(out) == len(m)
    assert out.source_scores["a"][0] == pytest.approx(0.1)  # what source a knew is kept
    assert out.evidence["b"][0] == 1 and out.adjustments[3] == ["x"]
    tail = m.insert(2, 99, "promotion")
    assert tail.sources == ["a", "b", "c", "promotion"] and tail.items[2] == 99


def test_concat_aligns_sources():
    m = _three()
    fill = Candidates.from_source("fallback", np.array([50, 51]), np.array([0.0, -1.0]))
    out = concat([m.head(2), fill])
    assert out.sources == ["a", "b", "c", "fallback"]
    assert out.items.tolist() == [1, 2, 50, 51]
    assert np.isnan(out.source_scores["a"][2:]).all()
    assert out.evidence["fallback"].tolist() == [-1, -1, -1, -1]


@pytest.fixture(scope="module")
def shop():
    data = make_data()
    return build_pipeline(data, PipelineConfig(ranker="weighted", exploration_slots=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 4, "history": ["c2_3"]},
        {"k": 6, "history": ["c1_1", "c1_2"], "diversity": 0.6},
        {"k": 5, "history": ["c3_3"], "category": "Dept1", "exclude_items": ("c3_4",)},
        {"k": 30, "history": ["c0_1"]},
    ],
)
def test_run_with_top_k_cut_equals_the_whole_chain(shop, kwargs):
    """`Pipeline.run` hands the last stages the top k only; the result is what the whole
    list gives (promotions pulling items from below the cut included)."""
    shop.set_campaigns([Campaign("c0_9", "pin", slot=1), Campaign("c2_8", "boost", boost=2)])
    q = shop.resolve(RecRequest(**kwargs))
    seed_state = shop.exploration.rng.bit_generator.state
    imps = shop.exploration.impressions.copy()
    got = shop.run(q)
    shop.exploration.rng.bit_generator.state = seed_state
    shop.exploration.impressions = imps
    want = shop.ranker.rank(q, shop.candidates(q))
    for stage in shop.rerankers:
        want = stage.rerank(q, want)
    want = want.head(q.k)
    assert _rows(got) == _rows(want)
    assert got.adjustments == want.adjustments
    shop.set_campaigns([])


def test_thompson_draw_is_the_beta_posterior(shop):
    """The inverse-CDF draw for unclicked arms and `Generator.beta` for clicked ones give
    each arm its Beta(1 + clicks, 1 + misses) posterior (Kolmogorov-Smirnov, 4,000 draws)."""
    ex = shop.exploration
    saved = ex.clicks.copy(), ex.impressions.copy()
    try:
        ex.clicks[:] = 0.0
        ex.impressions[:] = 0.0
        ex.impressions[1], ex.impressions[2] = 9.0, 40.0  # Beta(1, 10), Beta(1, 41)
        ex.clicks[3], ex.impressions[3] = 3.0, 7.0  # Beta(4, 5)
        arms = np.array([0, 1, 2, 3])
        draws = np.stack([ex.draw(arms) for _ in range(4000)])
        for col, (a, b) in enumerate([(1, 1), (1, 10), (1, 41), (4, 5)]):
            assert stats.kstest(draws[:, col], stats.beta(a, b).cdf).pvalue > 1e-3
        assert ((draws >= 0) & (draws <= 1)).all()
    finally:
        ex.clicks, ex.impressions = saved


def test_explanations_worded_once_per_reference_are_the_same(shop):
    req = RecRequest(k=8, history=["c1_1", "c1_2", "c2_3"], diversity=0.3)
    ex = shop.exploration
    state, imps = ex.rng.bit_generator.state, ex.impressions.copy()
    fast = [r.explanation for r in shop.recommend(req)]
    ex.rng.bit_generator.state, ex.impressions = state, imps  # the same exploration draw
    for r in shop.retrievers.values():
        r.explain_by_ref = False  # instance attribute: word every item
    try:
        slow = [r.explanation for r in shop.recommend(req)]
    finally:
        for r in shop.retrievers.values():
            del r.explain_by_ref
    assert fast == slow and any(e["evidence"] for e in fast)


def test_request_history_is_converted_once():
    from shoprec.pipeline.request import HistoryEvent

    events = (HistoryEvent("a", "click", 1.0), HistoryEvent("b"))
    assert RecRequest(history=events).history is events  # already HistoryEvents: kept
    mixed = RecRequest(history=["a", {"item_id": "b", "event_type": "purchase"}, ("c", "view", 2)])
    assert mixed.history == (
        HistoryEvent("a"),
        HistoryEvent("b", "purchase"),
        HistoryEvent("c", "view", 2.0),
    )


def test_sort_based_unique_helpers_match_numpy():
    from shoprec.pipeline.candidates import first_positions, unique_inverse

    rng = np.random.default_rng(2)
    for n in (0, 1, 7, 300):
        a = rng.integers(0, max(n // 3, 1), n)
        _, first = np.unique(a, return_index=True)
        assert first_positions(a).tolist() == first.tolist()
        uniq, inv = np.unique(a, return_inverse=True)
        got_u, got_i = unique_inverse(a)
        assert got_u.tolist() == uniq.tolist() and got_i.tolist() == inv.tolist()
