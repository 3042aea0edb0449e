"""Attribute KNN: shared rare attributes outrank shared common ones; popularity factor."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.models.attribute_knn import AttributeKNN


def _data() -> InteractionData:
    seqs = {"u1": ["a", "b"], "u2": ["c", "b"], "u3": ["d", "b"], "u4": ["c", "e"]}
    attrs = {
        "a": ["brandX", "cat"],
        "b": ["brandY", "cat"],
        "c": ["brandX", "cat"],  # shares the rare brand with a
        "d": ["brandY", "cat"],
        "e": [],
    }
    return InteractionData.from_sequences(seqs, attrs)


def test_rare_shared_attribute_wins_and_items_without_attributes_score_zero():
    data = _data()
    model = AttributeKNN(pop_weight=0.0).fit(data)
    a, b, c, e = data.items.to_index(["a", "b", "c", "e"])
    s = model.score([np.array([a])])[0]
    assert s[c] > s[b] > 0  # brandX (rarer than "cat") shared with c
    assert s[e] == 0.0


def test_popularity_factor_reorders_equally_similar_items():
    data = _data()
    b, d, a = data.items.to_index(["b", "d", "a"])
    plain = AttributeKNN(pop_weight=0.0).fit(data).score([np.array([a])])[0]
    assert plain[b] == pytest.approx(plain[d])
    popular = AttributeKNN(popularity=1.0, pop_weight=0.0).fit(data).score([np.array([a])])[0]
    assert popular[b] > popular[d]  # b was bought three times, d once


def test_bad_params_fail():
    with pytest.raises(ValueError):
        AttributeKNN(last=0).fit(_data())
