import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoprec.data.idmap import IdMap
from shoprec.data.interactions import InteractionData, histories_to_csr


@given(st.lists(st.text(min_size=1, max_size=5)))
def test_idmap_round_trip(ids):
    m = IdMap(ids)
    uniq = list(dict.fromkeys(ids))
    assert m.to_list() == uniq and len(m) == len(uniq)
    assert m.to_ids(m.to_index(uniq)) == uniq
    assert IdMap.from_list(m.to_list()) == m
    assert m.get("\x00never") == -1


def test_idmap_rejects_duplicates_on_load():
    with pytest.raises(ValueError):
        IdMap.from_list(["a", "a"])


def test_matrix_sequences_and_cold_items():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "a"],
            "item_id": ["x", "y", "x", "x"],
            "timestamp": [3.0, 1.0, 2.0, 5.0],
            "weight": [1.0, 2.0, 4.0, 1.0],
        }
    )
    items = pd.DataFrame({"item_id": ["z", "x"], "title": ["Zed", "Ex"]})
    d = InteractionData.from_frame(frame, item_table=items)
    assert d.items.to_list() == ["x", "y", "z"]
    assert list(d.item_table["title"].fillna("")) == ["Ex", "", "Zed"]
    assert d.matrix().toarray().tolist() == [[2.0, 2.0, 0.0], [4.0, 0.0, 0.0]]
    assert [d.items.to_ids(s) for s in d.sequences()] == [["y", "x", "x"], ["x"]]
    assert d.item_popularity().tolist() == [3.0, 1.0, 0.0]
    fp = d.fingerprint()
    assert fp == InteractionData.from_frame(frame, item_table=items).fingerprint()
    assert fp != d.subset(np.array([True, True, True, False])).fingerprint()


def test_histories_to_csr_sums_repeats():
    m = histories_to_csr([np.array([0, 2, 0]), np.array([], dtype=int)], 3)
    assert m.toarray().tolist() == [[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_mismatched_arrays_raise():
    with pytest.raises(ValueError):
        InteractionData(IdMap(["u"]), IdMap(["i"]), [0, 0], [0], [1.0], [1.0])
