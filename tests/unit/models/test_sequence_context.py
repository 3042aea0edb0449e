"""SequenceContext: candidate features from the training sequences, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.models.sequence_context import FEATURES, SequenceContext


@pytest.fixture
def data() -> InteractionData:
    # items are created in order a, b, c, d -> indices 0, 1, 2, 3
    return InteractionData.from_sequences(
        {"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["b", "a", "b", "d"]},
        item_attributes={"a": ["x"], "b": ["x", "y"], "c": ["y"], "d": ["z"]},
    )


def test_item_statistics_match_hand_counts(data: InteractionData) -> None:
    ctx = SequenceContext.from_data(data)
    count = np.array([3, 4, 1, 1])  # a, b, c, d
    last = np.array([0, 1, 1, 1])  # sequence ends: c, b, d
    last3 = np.array([3, 3, 1, 1])  # u1: a b c; u2: a b; u3: a b d
    np.testing.assert_allclose(ctx.log_popularity, np.log1p(count), rtol=1e-6)
    np.testing.assert_allclose(ctx.log_last_count, np.log1p(last), rtol=1e-6)
    np.testing.assert_allclose(ctx.log_last3_count, np.log1p(last3), rtol=1e-6)
    # a: 0/2 (u1), 0/1 (u2), 1/3 (u3) -> mean 1/9; d: 3/3
    assert ctx.mean_position[0] == pytest.approx(1 / 9)
    assert ctx.mean_position[3] == pytest.approx(1.0)
    t = ctx.transitions.toarray()
    assert t[0, 1] == 3  # a -> b in u1, u2, u3
    assert t[1, 0] == 1 and t[1, 2] == 1 and t[1, 3] == 1
    assert t.sum() == 3 + 3  # 2 + 1 + 3 transitions


def test_candidate_features_for_a_history(data: InteractionData) -> None:
    ctx = SequenceContext.from_data(data)
    histories = [np.array([0, 1]), np.array([], np.int64)]  # "a b" and a stranger
    cand = np.array([[2, 3, 0], [1, 2, 3]])
    cols = dict(zip(FEATURES, ctx.features(histories, cand), strict=True))
    assert all(c.shape == cand.shape and c.dtype == np.float32 for c in cols.values())
    # last item b: b -> c once, b -> d once, b -> a once; c -> b never, a -> b three times
    np.testing.assert_allclose(cols["log_transitions_from_last"][0], np.log1p([1, 1, 1]))
    np.testing.assert_allclose(cols["log_transitions_to_last"][0], np.log1p([0, 0, 3]))
    # last five {a, b}: a -> c 0, b -> c 1; a -> d 0, b -> d 1; a -> a 0, b -> a 1
    np.testing.assert_allclose(cols["log_transitions_from_last5"][0], np.log1p([1, 1, 1]))
    # b has tags {x, y}: c shares y, d nothing, a shares x
    np.testing.assert_allclose(cols["shared_tags_with_last"][0], [1, 0, 1])
    assert cols["history_mean_popularity"][0, 0] == pytest.approx(np.log1p([3, 4]).mean())
    assert cols["last_item_popularity"][0, 2] == pytest.approx(np.log1p(4))
    # a stranger has no last item: history features are zero, item features are not
    for name in FEATURES[4:]:
        assert not cols[name][1].any(), name
    np.testing.assert_allclose(cols["log_popularity"][1], np.log1p([4, 1, 1]), rtol=1e-6)


def test_save_and_load_round_trip(data: InteractionData, tmp_path) -> None:
    ctx = SequenceContext.from_data(data)
    ctx.save(tmp_path / "ctx")
    back = SequenceContext.load(tmp_path / "ctx")
    histories = [np.array([1, 0])]
    cand = np.array([[1, 2, 3]])
    for a, b in zip(ctx.features(histories, cand), back.features(histories, cand), strict=True):
        np.testing.assert_array_equal(a, b)
