"""Popularity baselines: global counts, and trending counts with exponential time decay.

Every history gets the same ranking (minus its own items, which `recommend` excludes).
Popularity is the floor every personalised model must clear; trending is the fallback a
shop shows to a visitor with no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender


class Popularity(Recommender):
    """Items ranked by how many interactions (or distinct users) they have in training.

    Parameters
    ----------
    by : {"interactions", "users"}
        Count every interaction, or each user once per item.
    """

    name = "popularity"

    def __init__(self, by: str = "interactions"):
        self.by = by

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.by == "interactions":
            pop = data.item_popularity()
        elif self.by == "users":
            pop = np.asarray((data.matrix() > 0).sum(axis=0)).ravel().astype(np.float64)
        else:
            raise ValueError(f"Popularity: by must be 'interactions' or 'users', got {self.by!r}")
        self.popularity_ = self._normalise(pop)
        return self

    @staticmethod
    def _normalise(pop: np.ndarray) -> np.ndarray:
        total = pop.sum()
        return (pop / total if total > 0 else pop).astype(np.float32)

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Shape (B, n_items): the same popularity vector for every history."""
        self._check_fitted()
        return np.tile(self.popularity_, (len(histories), 1))


class Trending(Popularity):
    """Popularity where an interaction's weight halves every `half_life` time units.

    Parameters
    ----------
    half_life : float
        In the units of the data's timestamps (seconds for event data: the default is seven
        days).
    positional_half_life : float
        Used instead when timestamps are per-user positions (sequence files have no common
        clock): decay counts positions back from each user's latest event.
    """

    name = "trending"

    def __init__(self, half_life: float = 7 * 86400.0, positional_half_life: float = 5.0):
        self.half_life = half_life
        self.positional_half_life = positional_half_life

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if not (self.half_life > 0 and self.positional_half_life > 0):
            raise ValueError("Trending: half_life and positional_half_life must be > 0")
        ts = data.timestamps
        if data.n_interactions == 0:
            self.popularity_ = np.zeros(data.n_items, np.float32)
            return self
        if _is_positional(data):
            last = np.zeros(data.n_users)
            np.maximum.at(last, data.user_idx, ts)
            age = (last[data.user_idx] - ts) / self.positional_half_life
        else:
            age = (ts.max() - ts) / self.half_life
        w = data.weights.astype(np.float64) * np.exp2(-age)
        pop = np.bincount(data.item_idx, weights=w, minlength=data.n_items)
        self.popularity_ = self._normalise(pop)
        self.reference_time_ = float(ts.max())
        return self


def _is_positional(data: InteractionData) -> bool:
    """Timestamps that are per-user positions 0, 1, 2, ... (as `from_sequences` makes)."""
    ts = data.timestamps
    return bool(ts.max() < 1e6 and np.all(ts == np.round(ts)) and ts.min() >= 0)
