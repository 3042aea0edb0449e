import numpy as np
import pandas as pd

from shoprec.features.tabular import TabularEncoder, category_prefixes


def test_category_prefixes():
    assert category_prefixes("A > B > C") == ["A", "A > B", "A > B > C"]
    assert category_prefixes("A/B") == ["A", "A > B"]
    assert category_prefixes("") == [] and category_prefixes(None) == []


def test_tabular_blocks_share_what_items_share():
    t = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "category": ["Beauty > Skin", "Beauty > Skin", "Beauty > Makeup", "Garden"],
            "brand": ["X", "Y", "X", None],
            "price": [10.0, 12.0, 200.0, np.nan],
            "tags": [["1", "2"], ["2"], [], None],
        }
    )
    enc = TabularEncoder(n_price_buckets=2).fit(t)
    b = enc.transform(t)
    cat = b["category"]
    assert cat[0] @ cat[1] == 2 and cat[0] @ cat[2] == 1 and cat[0] @ cat[3] == 0
    assert b["brand"][0] @ b["brand"][2] == 1 and b["brand"][3].sum() == 0
    assert b["tags"][0] @ b["tags"][1] == 1 and b["tags"][2].sum() == 0
    price = b["price"]
    assert price[2, 0] > price[0, 0]  # standardised log price orders items
    assert price[3].sum() == 0  # unknown price: empty block
    new = enc.transform(
        pd.DataFrame({"item_id": ["e"], "brand": ["Unseen"], "category": ["Garden > Tools"]})
    )
    assert new["brand"].sum() == 0 and new["category"][0] @ cat[3] == 1
