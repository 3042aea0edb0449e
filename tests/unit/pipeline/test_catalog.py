"""The live catalog view: availability, categories, growth and persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.idmap import IdMap
from shoprec.pipeline.catalog import CatalogView
from shoprec.types import Item


def make_view() -> CatalogView:
    table = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["A", "B", None, "D"],
            "category": ["Beauty > Skin", "Beauty > Hair", "Home", None],
            "price": [10.0, None, 30.0, 5.0],
            "stock": [1, 0, None, 3],
            "active": [True, True, True, False],
            "created_at": [0.0, 0.0, 0.0, 0.0],
        }
    )
    ids = IdMap(["a", "b", "c", "d"])
    return CatalogView.from_table(
        ids, table, popularity=np.array([5.0, 1, 3, 9]), now=1e6, new_days=0, new_max_interactions=1
    )


def test_availability_prices_and_categories():
    v = make_view()
    assert v.available.tolist() == [True, False, True, False]  # stock 0, inactive
    assert np.isnan(v.price[1]) and v.price[2] == 30.0
    assert v.category_name(int(v.category[0])) == "Beauty > Skin"
    assert v.category_name(int(v.category[3])) == ""
    beauty = v.category_mask("Beauty")
    assert beauty[v.category].tolist() == [True, True, False, False]
    assert v.category_mask("Beauty > Skin")[v.category].tolist() == [True, False, False, False]
    tops = v.top_of(np.arange(4))
    assert tops[0] == tops[1] != tops[2]
    assert v.title(2) == "c" and v.title(0) == "A"  # id when there is no title
    assert v.is_new.tolist() == [False, True, False, False]  # <= 1 interaction
    assert v.fallback_order.tolist() == [3, 0, 2, 1]


def test_updates_take_effect_and_grow_without_touching_the_source_map():
    ids = IdMap(["a", "b"])
    v = CatalogView.from_table(ids, None, popularity=np.array([10.0, 10.0]))
    new = v.update_items(
        [Item("z", category="Toys > Cars", price=3.0, stock=2), {"item_id": "a", "stock": 0}]
    )
    assert new == [2, 0] and len(v) == 3 and len(ids) == 2
    assert v.available.tolist() == [False, True, True]
    assert v.is_new[2] and v.new_items.tolist() == [2]
    assert v.fallback_order[-1] == 2
    assert v.category_mask("Toys")[v.category[2]]
    assert v.remove_item("b") and not v.available[1]


def test_state_round_trip():
    v = make_view()
    v.update_items([{"item_id": "e", "category": "Garden > Tools"}])
    arrays, meta = v.state()
    w = CatalogView.from_state(arrays, meta)
    assert w.items == v.items and w.categories == v.categories
    for name in ("available", "category", "is_new", "popularity"):
        assert np.array_equal(getattr(w, name), getattr(v, name))
    assert np.array_equal(w.top_of(np.arange(len(w))), v.top_of(np.arange(len(v))))
