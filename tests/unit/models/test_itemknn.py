"""ItemKNN: hand-computed similarities, direction of the sequential variant, explanations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.models.itemknn import ItemKNN


@pytest.fixture
def data() -> InteractionData:
    # a and b together for 3 users, a and c for 1; c alone for 1 more
    return InteractionData.from_sequences(
        {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["a", "b"], "u4": ["a", "c"], "u5": ["c"]}
    )


def test_cosine_with_shrink(data: InteractionData) -> None:
    m = ItemKNN(shrink=1.0).fit(data)
    a, b, c = (data.items.get(x) for x in "abc")
    s = m.similarity_.toarray()
    assert s[a, b] == pytest.approx(3 / (math.sqrt(4 * 3) + 1))
    assert s[a, c] == pytest.approx(1 / (math.sqrt(4 * 2) + 1))
    assert s[b, c] == 0 and s[a, a] == 0
    assert m.recommend([np.array([a])], k=1)[0][0, 0] == b


def test_cooccurrence_is_asymmetric(data: InteractionData) -> None:
    s = ItemKNN(similarity="cooccurrence", shrink=0.0).fit(data).similarity_.toarray()
    a, b = data.items.get("a"), data.items.get("b")
    assert s[a, b] == pytest.approx(3 / 4) and s[b, a] == pytest.approx(1.0)


def test_neighbour_pruning(data: InteractionData) -> None:
    s = ItemKNN(neighbours=1).fit(data).similarity_
    assert (np.diff(s.indptr) <= 1).all()


def test_sequential_counts_only_after_and_weights_by_distance() -> None:
    d = InteractionData.from_sequences({"u1": ["x", "y", "z"], "u2": ["x", "y"]})
    s = ItemKNN(similarity="sequential", window=2, shrink=0.0).fit(d).similarity_.toarray()
    x, y, z = (d.items.get(i) for i in "xyz")
    assert s[y, x] == 0  # x never follows y
    assert s[x, y] == pytest.approx(2 / 2)  # both users of x took y right after
    assert s[x, z] == pytest.approx(0.5 / 2)  # one user, two steps later


def test_recency_weights_latest_item_more() -> None:
    d = InteractionData.from_sequences(
        {f"u{i}": pair for i, pair in enumerate([["p", "q"]] * 3 + [["r", "s"]] * 3)}
    )
    p, r, q, s = (d.items.get(i) for i in "prqs")
    flat = ItemKNN().fit(d).score([np.array([p, r])])[0]
    assert flat[q] == pytest.approx(flat[s])
    recent = ItemKNN(recency=0.5).fit(d).score([np.array([p, r])])[0]
    assert recent[s] > recent[q]  # r is the latest


def test_explain_names_contributing_history_items() -> None:
    d = InteractionData.from_sequences(
        {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["c", "b"], "u4": ["d", "e"]}
    )
    m = ItemKNN(shrink=0.0).fit(d)
    a, b, c, dd, e = (d.items.get(i) for i in "abcde")
    (why_b, why_e) = m.explain(np.array([c, a, dd]), [b, e], n=3)
    assert [i for i, _ in why_b] == [a, c]  # a co-occurs with b twice, c once
    assert why_b[0][1] > why_b[1][1] > 0
    assert [i for i, _ in why_e] == [dd]


def test_bad_parameters(data: InteractionData) -> None:
    for bad in ({"similarity": "nope"}, {"neighbours": 0}, {"recency": 0.0}):
        with pytest.raises(ValueError):
            ItemKNN(**bad).fit(data)


def test_recency_chosen_on_validation_when_the_last_item_decides() -> None:
    # items i and i ^ 1 are partners. A user takes a pair, two random items, an item b and
    # its partner, then anything: the validation target (partner of b) follows from the
    # latest item, while the partners of the two random items are strong distractors.
    rng = np.random.default_rng(0)
    seqs = {}
    for u in range(400):
        pairs = rng.choice(12, 5, replace=False)
        a, r1, r2, b, z = 2 * pairs + rng.integers(0, 2, 5)
        seqs[f"u{u}"] = [f"i{x}" for x in (a, a ^ 1, r1, r2, b, b ^ 1, z)]
    d = InteractionData.from_sequences(seqs)
    from shoprec.data.splits import leave_one_out

    split = leave_one_out(d)
    m = ItemKNN(similarity="cooccurrence").fit(split.train, valid=split.valid)
    assert set(m.valid_ndcg_) == {1.0, 0.8, 0.5, 0.2}
    assert m.recency_ < 1.0
    assert m.valid_ndcg_[m.recency_] > m.valid_ndcg_[1.0]
