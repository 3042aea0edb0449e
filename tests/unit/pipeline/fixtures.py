"""A tiny shop with known answers, shared by the pipeline unit and contract tests.

- 6 categories C0..C5 ("Dept{c%2} > C{c}"), 10 items each: item "c{c}_{j}".
- Every user lives in one category and walks it in order: c{c}_{j}, c{c}_{j+1}, ... so the
  item after c{c}_{j} is always c{c}_{j+1} (item-to-item's known answer).
- Lower j are more popular (every walk starts at j in 0..3).
- Prices: 10 * (j + 1). All in stock, except "c5_9" (stock 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.models.base import Recommender

N_CATS = 6
PER_CAT = 10


def item_id(c: int, j: int) -> str:
    return f"c{c}_{j}"


def items_frame() -> pd.DataFrame:
    rows = []
    for c in range(N_CATS):
        for j in range(PER_CAT):
            rows.append(
                {
                    "item_id": item_id(c, j),
                    "title": f"Item {c}-{j}",
                    "category": f"Dept{c % 2} > C{c}",
                    "price": 10.0 * (j + 1),
                    "stock": 0 if (c, j) == (5, 9) else 5,
                    "active": True,
                    "created_at": -400 * 86400.0,  # long before the events
                }
            )
    return pd.DataFrame(rows)


def make_data(n_users: int = 120, length: int = 6, seed: int = 0) -> InteractionData:
    """Interactions of the known-answer shop (timestamps one day apart)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        c = u % N_CATS
        start = int(rng.integers(0, 4))
        for t in range(length):
            j = (start + t) % PER_CAT
            rows.append((f"u{u}", item_id(c, j), 86400.0 * (t + 1) + u, 1.0))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"])
    return InteractionData.from_frame(frame, items_frame())


class NextItemModel(Recommender):
    """A test model that knows the shop's rule: scores the successor of the last item."""

    name = "next_item"

    def __init__(self, bonus: float = 1.0):
        self.bonus = bonus

    def fit(self, data, valid=None):  # noqa: ANN001 - test double
        self.n_items_ = data.n_items
        self.next_ = np.arange(data.n_items)
        ids = data.items.to_list()
        for i, e in enumerate(ids):
            c, j = e[1:].split("_")
            nxt = item_id(int(c), (int(j) + 1) % PER_CAT)
            self.next_[i] = data.items.get(nxt)
        return self

    def score(self, histories):  # noqa: ANN001
        out = np.zeros((len(histories), self.n_items_), np.float32)
        for r, h in enumerate(histories):
            out[r] = -np.arange(self.n_items_, dtype=np.float32) * 1e-3  # a fixed tie order
            if len(h):
                out[r, self.next_[int(h[-1])]] += self.bonus
        return out
