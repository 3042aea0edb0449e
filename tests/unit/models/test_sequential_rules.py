"""Sequential rules: transition counts with known values, decayed multi-item queries."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.models.sequential_rules import SequentialRules


def _data() -> InteractionData:
    # a -> b twice, a -> c once; c is never followed by anything
    return InteractionData.from_sequences({"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["a", "c"]})


def test_forward_transitions_rank_the_frequent_successor_first():
    data = _data()
    model = SequentialRules(window=1, backward=0.0, alpha=0.0, pop_weight=0.0).fit(data)
    a, b, c = data.items.to_index(["a", "b", "c"])
    scores = model.score([np.array([a])])[0]
    assert scores[b] == pytest.approx(2.0)
    assert scores[c] == pytest.approx(1.0)
    assert scores[a] == 0.0


def test_alpha_one_gives_transition_probabilities_and_backward_links():
    data = _data()
    model = SequentialRules(window=1, backward=0.5, alpha=1.0, pop_weight=0.0).fit(data)
    a, b, c = data.items.to_index(["a", "b", "c"])
    row_a = model.score([np.array([a])])[0]
    assert row_a[b] == pytest.approx(2 / 3) and row_a[c] == pytest.approx(1 / 3)
    row_c = model.score([np.array([c])])[0]  # only the backward link c -> a
    assert row_c[a] == pytest.approx(1.0)


def test_query_decays_with_recency_and_window_weights_distance():
    seqs = {"u1": ["x", "y", "z"]}
    data = InteractionData.from_sequences(seqs)
    x, y, z = data.items.to_index(["x", "y", "z"])
    model = SequentialRules(
        window=2, backward=0.0, alpha=0.0, decay=0.5, last=2, pop_weight=0.0
    ).fit(data)
    # x -> y (1), x -> z (1/2), y -> z (1)
    s = model.score([np.array([x, y])])[0]
    # most recent y weighs 1, x weighs 0.5: z = 1*1 + 0.5*0.5, y = 0.5*1
    assert s[z] == pytest.approx(1.25)
    assert s[y] == pytest.approx(0.5)


def test_empty_history_falls_back_to_popularity_and_bad_params_fail():
    data = _data()
    model = SequentialRules().fit(data)
    s = model.score([np.array([], dtype=np.int64)])[0]
    assert np.argmax(s) == data.items.to_index(["a"])[0]
    with pytest.raises(ValueError):
        SequentialRules(window=0).fit(data)


def test_save_load_round_trip(tmp_path):
    data = _data()
    model = SequentialRules().fit(data)
    model.save(tmp_path / "sr")
    loaded = SequentialRules.load(tmp_path / "sr")
    h = [np.array([0, 1])]
    np.testing.assert_allclose(model.score(h), loaded.score(h))
