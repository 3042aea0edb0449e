"""Price, category-path, brand and tag encodings for items.

Each encoding is a dense block with one row per item:

- price: log price (standardised) plus a one-hot quantile bucket, so "cheap" and "premium"
  items of any category meet;
- category: multi-hot over every prefix of the path ("Beauty", "Beauty > Skin", ...), so two
  serums share more than a serum and a lipstick, and those share more than a serum and a tent;
- brand: one-hot over the brands seen at fit time (unseen brands get a zero row);
- tags: multi-hot over attribute ids or tags (Beauty's brand/category ids arrive this way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd


def category_prefixes(path: object) -> list[str]:
    """["A", "A > B", "A > B > C"] for "A > B > C" (also accepts "/" and "|" separators)."""
    if path is None or (isinstance(path, float) and np.isnan(path)):
        return []
    s = str(path).strip()
    if not s:
        return []
    for sep in ("|", "/"):
        s = s.replace(sep, ">")
    parts = [p.strip() for p in s.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray | set):
        return [str(v) for v in value]
    s = str(value).strip()
    return [t.strip() for t in s.split(",") if t.strip()] if s else []


def _vocab(tokens: Iterable[str], min_count: int, max_size: int) -> dict[str, int]:
    counts = Counter(tokens)
    keep = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
    return {t: i for i, t in enumerate(keep[:max_size])}


class TabularEncoder:
    """Fit vocabularies and price buckets on a catalog, then encode any item rows.

    Parameters
    ----------
    n_price_buckets : int
        Quantile buckets of the price.
    min_count : int
        Categories, brands and tags seen fewer times are dropped.
    max_vocab : int
        Largest vocabulary per block.
    """

    def __init__(self, n_price_buckets: int = 8, min_count: int = 1, max_vocab: int = 5000):
        self.n_price_buckets = n_price_buckets
        self.min_count = min_count
        self.max_vocab = max_vocab

    def fit(self, table: pd.DataFrame) -> TabularEncoder:
        """Learn price statistics and the category, brand and tag vocabularies."""
        prices = self._prices(table)
        logp = np.log1p(prices[np.isfinite(prices) & (prices > 0)])
        self.has_price_ = len(logp) > 0
        if self.has_price_:
            self.price_mean_ = float(logp.mean())
            self.price_std_ = float(logp.std()) or 1.0
            qs = np.linspace(0, 1, self.n_price_buckets + 1)[1:-1]
            self.price_edges_ = np.unique(np.quantile(logp, qs))
        cats = (p for v in self._col(table, "category") for p in category_prefixes(v))
        self.category_vocab_ = _vocab(cats, self.min_count, self.max_vocab)
        brands = (str(b).strip() for b in self._col(table, "brand") if _present(b))
        self.brand_vocab_ = _vocab(brands, self.min_count, self.max_vocab)
        tags = (t for v in self._col(table, "tags") for t in _as_list(v))
        self.tag_vocab_ = _vocab(tags, self.min_count, self.max_vocab)
        return self

    @staticmethod
    def _col(table: pd.DataFrame, name: str) -> list:
        return table[name].tolist() if name in table.columns else [None] * len(table)

    def _prices(self, table: pd.DataFrame) -> np.ndarray:
        if "price" not in table.columns:
            return np.full(len(table), np.nan)
        return pd.to_numeric(table["price"], errors="coerce").to_numpy(dtype=np.float64)

    def transform(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """Blocks "price", "category", "brand", "tags", each shape (N, d_block) float32.

        Blocks with an empty vocabulary (or no prices at fit time) are left out.
        """
        n = len(table)
        out: dict[str, np.ndarray] = {}
        if self.has_price_:
            logp = np.log1p(self._prices(table))
            ok = np.isfinite(logp)
            block = np.zeros((n, 2 + len(self.price_edges_)), dtype=np.float32)
            block[ok, 0] = (logp[ok] - self.price_mean_) / self.price_std_
            block[ok, 1 + np.searchsorted(self.price_edges_, logp[ok])] = 1.0
            out["price"] = block
        for name, vocab, tokens in (
            (
                "category",
                self.category_vocab_,
                (category_prefixes(v) for v in self._col(table, "category")),
            ),
            (
                "brand",
                self.brand_vocab_,
                ([str(b).strip()] if _present(b) else [] for b in self._col(table, "brand")),
            ),
            ("tags", self.tag_vocab_, (_as_list(v) for v in self._col(table, "tags"))),
        ):
            if not vocab:
                continue
            block = np.zeros((n, len(vocab)), dtype=np.float32)
            for i, toks in enumerate(tokens):
                cols = [vocab[t] for t in toks if t in vocab]
                block[i, cols] = 1.0
            out[name] = block
        return out


def _present(value: object) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return bool(str(value).strip())
