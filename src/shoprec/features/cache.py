"""A content-addressed embedding cache: an item is re-embedded only when its content changes.

Keys are hashes of (encoder fingerprint, the item's content), so a changed title, a new image
or a new encoder version is a miss, and an unchanged item is a hit whatever its id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def content_key(namespace: str, content: Any) -> str:
    """Stable key of `content` (str, bytes, numpy array or path) under `namespace`."""
    h = hashlib.sha256(namespace.encode())
    h.update(b"\x00")
    if isinstance(content, np.ndarray):
        h.update(str(content.shape).encode())
        h.update(np.ascontiguousarray(content).tobytes())
    elif isinstance(content, bytes | bytearray):
        h.update(bytes(content))
    elif isinstance(content, Path):
        st = content.stat() if content.is_file() else None
        h.update(
            f"path:{content}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}".encode()
        )
    else:
        h.update(repr(content).encode())
    return h.hexdigest()[:32]


class EmbeddingCache:
    """In-memory map key -> vector, with hit/miss counters and npz persistence."""

    def __init__(self) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def encode(
        self, keys: Sequence[str], values: Sequence[Any], fn: Callable[[list[Any]], np.ndarray]
    ) -> np.ndarray:
        """Vectors for `values`, calling `fn` only on values whose key is not cached.

        Parameters
        ----------
        keys : N keys (see `content_key`), one per value
        values : N inputs for `fn`
        fn : list of inputs -> array of shape (M, d)

        Returns
        -------
        np.ndarray, shape (N, d) float32
        """
        missing: dict[str, Any] = {}
        for k, v in zip(keys, values, strict=True):
            if k not in self._vectors and k not in missing:
                missing[k] = v
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            vecs = np.asarray(fn(list(missing.values())), dtype=np.float32)
            for k, vec in zip(missing, vecs, strict=True):
                self._vectors[k] = vec
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32, copy=False)

    def save(self, path: str | Path) -> None:
        """Write all vectors to an .npz file (one key/vector array pair per vector size,
        since text and image vectors share the cache)."""
        by_dim: dict[int, list[str]] = {}
        for k, v in self._vectors.items():
            by_dim.setdefault(int(v.shape[0]), []).append(k)
        arrays: dict[str, np.ndarray] = {}
        for d, keys in by_dim.items():
            keys.sort()
            arrays[f"keys_{d}"] = np.array(keys)
            arrays[f"vectors_{d}"] = np.stack([self._vectors[k] for k in keys])
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingCache:
        cache = cls()
        with np.load(path) as z:
            for name in z.files:
                if name.startswith("keys_"):
                    vecs = z["vectors_" + name[5:]]
                    for k, v in zip(z[name].tolist(), vecs, strict=True):
                        cache._vectors[str(k)] = v
        return cache

    def __getstate__(self) -> dict[str, Any]:
        return {"_vectors": self._vectors, "hits": 0, "misses": 0}
