"""The interface every model implements.

Models work in index space and take the user's *history* as input rather than a user index:
`score(histories)` scores all items for each history. Serving passes the shopper's latest
events, so a click changes the next recommendation without retraining, and an unseen shopper
with a few events is scored by the same code. External ids are translated by the pipeline
(`IdMap`), never here.

Verbs (after implicit and scikit-learn): `fit`, `score`, `recommend`, `similar_items`,
`save`, `load`. The constructor only stores its keyword arguments; `fit` validates and learns;
learned state ends in `_`.
"""

from __future__ import annotations

import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from shoprec.data.interactions import InteractionData, histories_to_csr
from shoprec.data.splits import EvalSet


class NotFittedError(RuntimeError):
    """A model was used before `fit`."""


class Recommender(ABC):
    """Base class: subclasses implement `fit` and `score`; the rest has defaults."""

    name: str = "base"

    # --------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as stored (scikit-learn's convention)."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    # ---------------------------------------------------------------- verbs
    @abstractmethod
    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        """Learn from `data`; `valid` (when given) may drive early stopping."""

    @abstractmethod
    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of every item for each history.

        Parameters
        ----------
        histories : sequence of np.ndarray
            Per user, item indices in time order (may be empty).

        Returns
        -------
        np.ndarray, shape (B, n_items), float32
        """

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude_history: bool = True,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per history, shape (B, k) each.

        Items in the history are excluded unless `exclude_history` is false; `candidates`
        restricts the ranking to those item indices.
        """
        scores = np.asarray(self.score(histories), dtype=np.float32).copy()
        n_items = scores.shape[1]
        if exclude_history and len(histories):
            h = histories_to_csr(histories, n_items)
            rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
            scores[rows, h.indices] = -np.inf
        if candidates is not None:
            mask = np.full(n_items, True)
            mask[np.asarray(candidates, dtype=np.int64)] = False
            scores[:, mask] = -np.inf
        return top_k(scores, k)

    def similar_items(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to each of `items`: by default, what the model recommends to a
        history of just that item. Shape (B, k) each."""
        return self.recommend([np.array([int(i)]) for i in items], k)

    # --------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write the model to folder `path` (params.json + state.pkl)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(
            json.dumps({"name": self.name, "params": self.get_params()}, default=str, indent=2)
        )
        with open(path / "state.pkl", "wb") as f:
            pickle.dump(self._state(), f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        meta = json.loads((path / "params.json").read_text())
        model = cls(**meta["params"])
        with open(path / "state.pkl", "rb") as f:
            model._set_state(pickle.load(f))
        return model

    def _state(self) -> dict[str, Any]:
        """Learned attributes (those ending in `_`). Torch models override."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _set_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def _check_fitted(self) -> None:
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest scores per row, best first. Shape (B, k)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), np.int64), np.zeros((scores.shape[0], 0), np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
