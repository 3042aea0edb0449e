"""One content vector per item: text, image and tabular blocks fused by weighted concatenation.

Each block is L2-normalised per item and scaled by sqrt(weight) before concatenation, and the
result is L2-normalised again. So the cosine of two content vectors is (up to that last
normalisation) the weighted sum of their per-block cosines: `weights` read as "how much
does a matching brand count next to a matching description". A block an item lacks (no image,
no price) is a zero block and the other blocks carry it.

Expensive blocks (text, image) go through an `EmbeddingCache` keyed by the item's content, so
`transform` on a refreshed catalog re-embeds only new and changed items. `encode_items` turns
`shoprec.types.Item` records (the service's `POST /v1/items`) into content vectors at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.features.cache import EmbeddingCache, content_key
from shoprec.features.image import N_FEATURES, batch_image_features
from shoprec.features.tabular import TabularEncoder
from shoprec.features.text import TEXT_FIELDS, TextEncoder, item_texts
from shoprec.types import Item

DEFAULT_WEIGHTS: dict[str, float] = {
    "text": 1.0,
    "image": 0.5,
    "image_vector": 0.5,
    "category": 0.5,
    "brand": 0.25,
    "tags": 0.5,
    "price": 0.1,
}


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _image_vector(row_value: Any, attrs: Any) -> np.ndarray | None:
    v = row_value
    if v is None and isinstance(attrs, Mapping):
        v = attrs.get("image_vector")
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    arr = np.asarray(v, dtype=np.float32).ravel()
    return arr if arr.size else None


class ContentEncoder:
    """Fit on a catalog (`InteractionData.item_table` or a store's items frame); encode rows.

    Parameters
    ----------
    text_backend : {"auto", "minilm", "tfidf"}
        See `TextEncoder`.
    text_dim : int
        Size of TF-IDF vectors (MiniLM is 384-d).
    text_fields : sequence of str
        Columns joined into the item's text.
    weights : dict or None
        Block weights; missing keys take `DEFAULT_WEIGHTS`; 0 drops a block.
    image_root : str or None
        Folder that relative image paths in column "image" are resolved against.
    n_price_buckets, min_count : int
        See `TabularEncoder`.
    random_state : int
    """

    def __init__(
        self,
        text_backend: str = "auto",
        text_dim: int = 128,
        text_fields: Sequence[str] = TEXT_FIELDS,
        weights: dict[str, float] | None = None,
        image_root: str | None = None,
        n_price_buckets: int = 8,
        min_count: int = 1,
        random_state: int = 0,
    ):
        self.text_backend = text_backend
        self.text_dim = text_dim
        self.text_fields = text_fields
        self.weights = weights
        self.image_root = image_root
        self.n_price_buckets = n_price_buckets
        self.min_count = min_count
        self.random_state = random_state

    # ----------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, images: Mapping[str, Any] | None = None) -> ContentEncoder:
        """Learn text vocabulary (TF-IDF), image feature scaling and tabular vocabularies.

        `images` maps item id -> image (array, PIL image, bytes or path) and takes precedence
        over column "image".
        """
        if table is None or len(table) == 0:
            raise ValueError("ContentEncoder.fit: empty item table")
        w = dict(DEFAULT_WEIGHTS)
        w.update(self.weights or {})
        unknown = set(w) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"ContentEncoder: unknown weight(s) {sorted(unknown)}")
        self.weights_ = w
        self.cache_ = EmbeddingCache()
        texts = item_texts(table, self.text_fields)
        self.has_text_ = w["text"] > 0 and any(texts)
        if self.has_text_:
            self.text_ = TextEncoder(
                self.text_backend, self.text_dim, random_state=self.random_state
            ).fit(texts)
        self.tabular_ = TabularEncoder(self.n_price_buckets, self.min_count).fit(table)
        feats, present = self._image_feats(table, images)
        self.has_image_ = w["image"] > 0 and bool(present.any())
        if self.has_image_:
            self.image_mean_ = feats[present].mean(axis=0)
            self.image_std_ = feats[present].std(axis=0) + 1e-3
        vecs = self._image_vectors(table)
        dims = {len(v) for v in vecs if v is not None}
        if len(dims) > 1:
            raise ValueError(f"ContentEncoder: image vectors of different sizes {sorted(dims)}")
        self.image_vector_dim_ = dims.pop() if dims and w["image_vector"] > 0 else 0
        return self

    # ---------------------------------------------------------- transform
    def blocks(
        self, table: pd.DataFrame, images: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Per-block vectors (unweighted, L2-normalised per row), each shape (N, d_block)."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("ContentEncoder is not fitted; call fit() first")
        out: dict[str, np.ndarray] = {}
        n = len(table)
        if self.has_text_:
            texts = item_texts(table, self.text_fields)
            keys = [content_key("text:" + self.text_.fingerprint_, t) for t in texts]
            out["text"] = self.cache_.encode(keys, texts, self.text_.transform).reshape(n, -1)
        if self.has_image_:
            feats, present = self._image_feats(table, images)
            z = (feats - self.image_mean_) / self.image_std_
            z[~present] = 0.0
            out["image"] = _l2(z.astype(np.float32))
        if self.image_vector_dim_:
            block = np.zeros((n, self.image_vector_dim_), dtype=np.float32)
            for i, v in enumerate(self._image_vectors(table)):
                if v is not None and len(v) == self.image_vector_dim_:
                    block[i] = v
            out["image_vector"] = _l2(block)
        for name, block in self.tabular_.transform(table).items():
            if self.weights_[name] > 0:
                out[name] = _l2(block)
        return out

    def transform(self, table: pd.DataFrame, images: Mapping[str, Any] | None = None) -> np.ndarray:
        """Fused, L2-normalised content vectors, shape (N, dim) float32."""
        blocks = self.blocks(table, images)
        parts = [np.sqrt(self.weights_[k]) * v for k, v in blocks.items()]
        if not parts:
            return np.zeros((len(table), 0), dtype=np.float32)
        return _l2(np.concatenate(parts, axis=1).astype(np.float32))

    def fit_transform(
        self, table: pd.DataFrame, images: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        return self.fit(table, images).transform(table, images)

    # ------------------------------------------------------------ helpers
    def _image_values(self, table: pd.DataFrame, images: Mapping[str, Any] | None) -> list[Any]:
        n = len(table)
        col = table["image"].tolist() if "image" in table.columns else [None] * n
        if images:
            ids = (
                table["item_id"].astype(str).tolist() if "item_id" in table.columns else [None] * n
            )
            col = [images.get(i, c) if i is not None else c for i, c in zip(ids, col, strict=True)]
        return col

    def _image_feats(
        self, table: pd.DataFrame, images: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        values = self._image_values(table, images)
        keyed = [
            Path(self.image_root) / v if isinstance(v, str) and v and self.image_root else v
            for v in values
        ]
        keys = [content_key("image:v1", v) for v in keyed]

        def compute(vals: list[Any]) -> np.ndarray:
            feats, present = batch_image_features(vals, self.image_root)
            return np.concatenate([feats, present[:, None].astype(np.float32)], axis=1)

        if not hasattr(self, "cache_"):
            self.cache_ = EmbeddingCache()
        if not values:
            return np.zeros((0, N_FEATURES), np.float32), np.zeros(0, bool)
        both = self.cache_.encode(keys, values, compute)
        return both[:, :N_FEATURES], both[:, N_FEATURES] > 0.5

    @staticmethod
    def _image_vectors(table: pd.DataFrame) -> list[np.ndarray | None]:
        n = len(table)
        col = table["image_vector"].tolist() if "image_vector" in table.columns else [None] * n
        attrs = table["attributes"].tolist() if "attributes" in table.columns else [None] * n
        return [_image_vector(c, a) for c, a in zip(col, attrs, strict=True)]


def items_frame(items: Sequence[Item]) -> pd.DataFrame:
    """`Item` records as an item table (columns as in `InteractionData.item_table`)."""
    rows = []
    for it in items:
        attrs = dict(it.attributes or {})
        rows.append(
            {
                "item_id": it.item_id,
                "title": it.title,
                "description": it.description,
                "category": it.category,
                "brand": it.brand,
                "price": it.price,
                "image": it.image,
                "tags": attrs.get("tags"),
                "image_vector": attrs.get("image_vector"),
                "attributes": attrs,
            }
        )
    return pd.DataFrame(rows)


def encode_items(
    encoder: ContentEncoder, items: Sequence[Item], images: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Content vectors for new or changed catalog items, shape (N, dim): what the pipeline
    calls from `update_items` so an item is recommendable the moment it is posted."""
    if not items:
        return np.zeros((0, 0), dtype=np.float32)
    return encoder.transform(items_frame(items), images)
