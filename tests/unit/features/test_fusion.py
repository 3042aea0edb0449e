import numpy as np
import pandas as pd
import pytest

from shoprec.features.fusion import ContentEncoder, encode_items, items_frame
from shoprec.types import Item
from tests.unit.features import catalog


def _enc(**kw) -> ContentEncoder:
    return ContentEncoder(text_backend="tfidf", text_dim=16, **kw)


def test_fused_vectors_group_items_by_category():
    t = catalog.items_frame()
    v = _enc().fit_transform(t, catalog.images())
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    sims = v @ v.T
    np.fill_diagonal(sims, -9)
    cats = np.arange(len(t)) // (catalog.WARM + catalog.COLD)
    assert (cats[np.argmax(sims, axis=1)] == cats).all()


def test_image_only_vectors_still_group_by_style():
    t = catalog.items_frame()
    enc = _enc(weights={"text": 0, "category": 0, "brand": 0, "price": 0})
    v = enc.fit_transform(t, catalog.images())
    assert list(enc.blocks(t, catalog.images())) == ["image"]
    sims = v @ v.T
    np.fill_diagonal(sims, -9)
    cats = np.arange(len(t)) // (catalog.WARM + catalog.COLD)
    assert (cats[np.argmax(sims, axis=1)] == cats).mean() == 1.0


def test_cache_reembeds_only_changed_items():
    t = catalog.items_frame()
    enc = _enc().fit(t)
    enc.transform(t)
    misses = enc.cache_.misses
    changed = t.copy()
    changed.loc[3, "title"] = "a completely different title"
    v2 = enc.transform(changed)
    assert enc.cache_.misses == misses + 1  # one text re-embedded, the rest hits
    v1 = enc.transform(t)
    assert enc.cache_.misses == misses + 1
    assert not np.allclose(v1[3], v2[3]) and np.allclose(v1[4], v2[4])


def test_precomputed_image_vectors_are_used():
    t = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["x", "x", "x"],
            "attributes": [{"image_vector": [1, 0, 0]}, {"image_vector": [0.9, 0.1, 0]}, {}],
        }
    )
    t["image_vector"] = [None, None, [0, 0, 1]]
    enc = _enc(weights={"text": 0.01})
    v = enc.fit_transform(t)
    assert enc.image_vector_dim_ == 3
    assert v[0] @ v[1] > 0.9 and v[0] @ v[2] < 0.1


def test_encode_items_for_new_records_matches_the_table_path():
    t = catalog.items_frame()
    enc = _enc().fit(t)
    new = Item(
        "n1",
        title="red running shoes model 99",
        category="Fashion > Shoes",
        brand="Brand00",
        price=12.0,
    )
    v = encode_items(enc, [new])
    shoes = enc.transform(t.iloc[:10])
    kettles = enc.transform(t.iloc[10:20])
    assert (shoes @ v[0]).mean() > (kettles @ v[0]).mean()
    assert np.allclose(v, enc.transform(items_frame([new])))


def test_fit_checks_its_input():
    with pytest.raises(ValueError):
        _enc().fit(pd.DataFrame({"item_id": []}))
    with pytest.raises(ValueError):
        _enc(weights={"colour": 1.0}).fit(catalog.items_frame())
    with pytest.raises(RuntimeError):
        _enc().transform(catalog.items_frame())


def test_cache_round_trip_with_text_and_image_vectors(tmp_path):
    from shoprec.features.cache import EmbeddingCache

    t = catalog.items_frame()
    enc = _enc().fit(t, catalog.images())
    v = enc.transform(t, catalog.images())
    enc.cache_.save(tmp_path / "c.npz")
    fresh = _enc().fit(t, catalog.images())
    fresh.cache_ = EmbeddingCache.load(tmp_path / "c.npz")
    assert len(fresh.cache_) == len(enc.cache_)
    assert np.allclose(fresh.transform(t, catalog.images()), v)
    assert fresh.cache_.misses == 0
