"""`InteractionData`: the cleaned interactions a model trains on.

Users x items, decided once: rows are users, columns are items, everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.idmap import IdMap


@dataclass(eq=False)
class InteractionData:
    """Interactions with their id maps, optional item/user tables, and derived views.

    Attributes
    ----------
    users, items : IdMap
        External id <-> index maps. Items may include ones with no interaction (cold items).
    user_idx, item_idx : np.ndarray, shape (N,)
        Index of the user and item of each interaction.
    timestamps : np.ndarray, shape (N,)
        Epoch seconds (or positions, for data that only has order).
    weights : np.ndarray, shape (N,)
        Implicit-feedback strength of each interaction.
    item_table : pd.DataFrame or None
        One row per item index (0..n_items-1): title, description, category, brand, price,
        stock, active, created_at, tags (list of str).
    user_table : pd.DataFrame or None
        One row per user index with user attributes.
    """

    users: IdMap
    items: IdMap
    user_idx: np.ndarray
    item_idx: np.ndarray
    timestamps: np.ndarray
    weights: np.ndarray
    item_table: pd.DataFrame | None = None
    user_table: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_idx = np.asarray(self.user_idx, dtype=np.int32)
        self.item_idx = np.asarray(self.item_idx, dtype=np.int32)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.weights = np.asarray(self.weights, dtype=np.float32)
        n = len(self.user_idx)
        if not (len(self.item_idx) == len(self.timestamps) == len(self.weights) == n):
            raise ValueError("InteractionData: arrays must have the same length")

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user_idx)

    # ------------------------------------------------------------ derived views
    @cached_property
    def order(self) -> np.ndarray:
        """Permutation sorting interactions by (user, time, arrival order)."""
        return np.lexsort((np.arange(self.n_interactions), self.timestamps, self.user_idx))

    def matrix(self) -> sp.csr_matrix:
        """User x item CSR matrix of summed weights, shape (n_users, n_items)."""
        return self._matrix

    @cached_property
    def _matrix(self) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (self.weights, (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        m.eliminate_zeros()
        return m

    def sequences(self) -> list[np.ndarray]:
        """Per user, the item indices in time order (repeats kept). Length n_users."""
        return self._sequences

    @cached_property
    def _sequences(self) -> list[np.ndarray]:
        o = self.order
        items = self.item_idx[o]
        counts = np.bincount(self.user_idx, minlength=self.n_users)
        return np.split(items, np.cumsum(counts)[:-1]) if self.n_users else []

    def item_popularity(self) -> np.ndarray:
        """Interaction count per item, shape (n_items,)."""
        return np.bincount(self.item_idx, minlength=self.n_items).astype(np.float64)

    def fingerprint(self, extra: str = "") -> str:
        """A stable hash of the interactions and id maps (and `extra` settings)."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.timestamps, self.weights):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update("\x1f".join(self.users.to_list()).encode())
        h.update("\x1e".join(self.items.to_list()).encode())
        h.update(extra.encode())
        return h.hexdigest()[:16]

    # ----------------------------------------------------------- constructors
    def subset(self, mask: np.ndarray) -> InteractionData:
        """The same id maps and tables with only the interactions where `mask` is true."""
        return InteractionData(
            users=self.users,
            items=self.items,
            user_idx=self.user_idx[mask],
            item_idx=self.item_idx[mask],
            timestamps=self.timestamps[mask],
            weights=self.weights[mask],
            item_table=self.item_table,
            user_table=self.user_table,
            meta=dict(self.meta),
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        item_table: pd.DataFrame | None = None,
        user_table: pd.DataFrame | None = None,
    ) -> InteractionData:
        """Build from columns user_id, item_id, timestamp and optional weight.

        Items in `item_table` (column item_id) get indices even without interactions, after
        the interacted ones, so a cold item is still known to content models.
        """
        users = IdMap(pd.unique(frame["user_id"].astype(str)))
        items = IdMap(pd.unique(frame["item_id"].astype(str)))
        if user_table is not None:
            for u in user_table["user_id"].astype(str):
                users.add(u)
        if item_table is not None:
            for i in item_table["item_id"].astype(str):
                items.add(i)
        weights = frame["weight"].to_numpy() if "weight" in frame else np.ones(len(frame))
        data = cls(
            users=users,
            items=items,
            user_idx=users.to_index(frame["user_id"].astype(str)),
            item_idx=items.to_index(frame["item_id"].astype(str)),
            timestamps=frame["timestamp"].to_numpy(dtype=np.float64),
            weights=weights,
        )
        data.item_table = align_table(item_table, items, "item_id")
        data.user_table = align_table(user_table, users, "user_id")
        return data

    @classmethod
    def from_sequences(
        cls,
        sequences: Mapping[str, Sequence[str]],
        item_attributes: Mapping[str, Sequence[str]] | None = None,
    ) -> InteractionData:
        """Build from ordered item lists per user; timestamps are positions."""
        users, items = IdMap(), IdMap()
        u_idx: list[int] = []
        i_idx: list[int] = []
        ts: list[float] = []
        for user, seq in sequences.items():
            u = users.add(str(user))
            for pos, item in enumerate(seq):
                u_idx.append(u)
                i_idx.append(items.add(str(item)))
                ts.append(float(pos))
        item_table = None
        if item_attributes is not None:
            tags = [list(map(str, item_attributes.get(i, ()))) for i in items.to_list()]
            item_table = pd.DataFrame({"item_id": items.to_list(), "tags": tags})
        return cls(
            users,
            items,
            np.array(u_idx),
            np.array(i_idx),
            np.array(ts),
            np.ones(len(u_idx)),
            item_table=item_table,
        )


def align_table(table: pd.DataFrame | None, ids: IdMap, key: str) -> pd.DataFrame | None:
    """Reorder `table` so row i describes index i of `ids` (missing rows become empty)."""
    if table is None:
        return None
    t = table.copy()
    t[key] = t[key].astype(str)
    t = t.drop_duplicates(key, keep="last").set_index(key)
    t = t.reindex(ids.to_list())
    t.index.name = key
    return t.reset_index()


def histories_to_csr(
    histories: Sequence[np.ndarray], n_items: int, weights: Sequence[np.ndarray] | None = None
) -> sp.csr_matrix:
    """Stack per-user item index arrays into a (B, n_items) CSR of summed weights."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.concatenate(histories).astype(np.int64) if len(histories) else np.zeros(0, np.int64)
    if weights is None:
        vals = np.ones(len(cols), dtype=np.float32)
    else:
        vals = np.concatenate(weights).astype(np.float32)
    m = sp.csr_matrix((vals, cols, indptr), shape=(len(histories), n_items))
    m.sum_duplicates()
    return m
