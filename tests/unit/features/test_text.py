import numpy as np
import pandas as pd
import pytest

from shoprec.features.text import TextEncoder, item_texts, minilm_available


def test_item_texts_joins_fields_in_order():
    t = pd.DataFrame(
        {
            "title": ["Red shoe", ""],
            "description": [None, "Kettle"],
            "category": ["Fashion > Shoes", "Home"],
            "brand": ["Acme", np.nan],
        }
    )
    assert item_texts(t) == ["Red shoe. Fashion, Shoes. Acme", "Kettle. Home"]
    assert item_texts(pd.DataFrame({"title": ["x"], "tags": [["a", "b"]]}), ("title", "tags")) == [
        "x. a b"
    ]


def test_tfidf_places_texts_by_their_words():
    texts = [
        "red running shoes",
        "red trail running shoes",
        "steel electric kettle",
        "electric kettle with steel base",
        "rose matte lipstick",
        "",
    ]
    enc = TextEncoder("tfidf", dim=4).fit(texts)
    v = enc.transform(texts)
    assert v.shape == (6, enc.output_dim)
    assert np.allclose(np.linalg.norm(v[:5], axis=1), 1, atol=1e-5) and not v[5].any()
    assert v[0] @ v[1] > v[0] @ v[2] and v[2] @ v[3] > v[2] @ v[4]
    new = enc.transform(["running shoes in blue"])  # unseen word is ignored, not an error
    assert new[0] @ v[0] > new[0] @ v[2]


def test_unknown_backend_and_unfitted_use_are_errors():
    with pytest.raises(ValueError):
        TextEncoder("bert").fit(["a"])
    with pytest.raises(RuntimeError):
        TextEncoder("tfidf").transform(["a"])


@pytest.mark.slow
@pytest.mark.skipif(not minilm_available(), reason="text extra not installed")
def test_minilm_understands_synonyms_that_tfidf_cannot_see():
    enc = TextEncoder("minilm").fit([])
    v = enc.transform(
        ["crimson sneakers for jogging", "red running shoes", "stainless steel tea kettle"]
    )
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
