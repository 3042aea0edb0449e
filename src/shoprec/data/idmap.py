"""Translation between the shop's ids and internal indices, decided once at the boundary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdMap:
    """An append-only, ordered map from external string ids to indices 0..n-1."""

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Iterable[str] = ()):
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        for i in ids:
            self.add(i)

    def add(self, external_id: str) -> int:
        """Index of `external_id`, adding it when new."""
        idx = self._index.get(external_id)
        if idx is None:
            idx = len(self._ids)
            self._index[external_id] = idx
            self._ids.append(external_id)
        return idx

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"IdMap(n={len(self._ids)})"

    def get(self, external_id: str, default: int = -1) -> int:
        return self._index.get(external_id, default)

    def to_index(self, external_ids: Iterable[str]) -> np.ndarray:
        """Indices of `external_ids`; unknown ids map to -1."""
        get = self._index.get
        return np.fromiter((get(e, -1) for e in external_ids), dtype=np.int64)

    def to_ids(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        ids = self._ids
        return [ids[int(i)] for i in indices]

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def to_list(self) -> list[str]:
        """Serialisable form (the artifact stores this)."""
        return list(self._ids)

    @classmethod
    def from_list(cls, ids: Sequence[str]) -> IdMap:
        m = cls()
        m._ids = list(ids)
        m._index = {e: i for i, e in enumerate(m._ids)}
        if len(m._index) != len(m._ids):
            raise ValueError("IdMap.from_list: duplicate ids")
        return m
