"""Score blending of several recommenders, with the weights chosen on validation data.

Each member's scores are standardised per user (zero mean, unit variance over all items),
so a collaborative model and a softmax sequence model live on one scale; the blend is their
weighted sum. With `weights=None` the weights are picked on the validation split by
NDCG@10 (coordinate ascent), so nothing depends on the dataset's name and nothing is tuned
on test data.

The product's default, `best`, stacks a blend under a learned ranker (`models.stacked`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import NotFittedError, Recommender
from shoprec.models.ranking import ndcg_hr_at_k, target_ranks
from shoprec.models.registry import create, model_class


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores of `scores` (B, n_items); constant rows become zeros."""
    scores = np.asarray(scores, dtype=np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


class Blend(Recommender):
    """Weighted sum of standardised member scores.

    Parameters
    ----------
    members : list of [name, params]
        Registered model names and their constructor arguments.
    weights : list of float or None
        Fixed weights, or None to choose them on `valid` in `fit` (equal weights without
        validation data).
    grid_steps : int
        Rounds of the coordinate search (the step halves after a round without gain).
    max_select_users : int or None
        Validation users used for the weight search (a fixed random subset when smaller).
    random_state : int
    """

    name = "blend"

    def __init__(
        self,
        members: Sequence[Sequence[Any]] = (),
        weights: Sequence[float] | None = None,
        grid_steps: int = 6,
        max_select_users: int | None = 5000,
        random_state: int = 0,
    ):
        self.members = members
        self.weights = weights
        self.grid_steps = grid_steps
        self.max_select_users = max_select_users
        self.random_state = random_state

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if not self.members:
            raise ValueError("Blend: give at least one member")
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ValueError("Blend: one weight per member")
        self.models_ = [
            create(name, **dict(params)).fit(data, valid) for name, params in self.members
        ]
        if self.weights is not None:
            self.weights_ = np.asarray(self.weights, dtype=np.float32)
        elif valid is None or len(valid) == 0 or len(self.models_) == 1:
            self.weights_ = np.full(len(self.models_), 1.0 / len(self.models_), np.float32)
        else:
            self.weights_, self.selection_ = self._select(valid)
        return self

    def _select(self, valid: EvalSet, batch_size: int = 2048) -> tuple[np.ndarray, dict]:
        """Coordinate ascent on the weights (start: all weight on the best single member),
        maximising validation NDCG@10 of the blend on a fixed subset of users."""
        rows = np.arange(len(valid))
        if self.max_select_users and len(valid) > self.max_select_users:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(len(valid), self.max_select_users, replace=False))
        hist = [valid.histories[i] for i in rows]
        targets = valid.targets[rows]
        n_targets = np.diff(targets.indptr)
        parts = []
        for m in self.models_:
            chunks = [
                standardise(m.score(hist[s : s + batch_size]))
                for s in range(0, len(hist), batch_size)
            ]
            parts.append(np.concatenate(chunks).astype(np.float32))
        cache: dict[tuple, float] = {}

        def value(w: np.ndarray) -> float:
            key = tuple(np.round(w, 4))
            if key not in cache:
                blend = np.zeros_like(parts[0])
                for wi, p in zip(w, parts, strict=True):
                    if wi:
                        blend += wi * p
                cache[key] = ndcg_hr_at_k(target_ranks(blend, hist, targets), n_targets, 10)[0]
            return cache[key]

        n = len(parts)
        singles = [value(np.eye(n)[i]) for i in range(n)]
        w = np.eye(n)[int(np.argmax(singles))]
        best = value(w)
        step = 1.0
        for _ in range(self.grid_steps):
            improved = False
            for i in range(n):
                for sign in (1.0, -1.0):
                    cand = w.copy()
                    cand[i] = max(cand[i] + sign * step, 0.0)
                    if cand.sum() == 0:
                        continue
                    v = value(cand)
                    if v > best + 1e-6:
                        best, w, improved = v, cand, True
            if not improved:
                step /= 2
        w = w / w.sum()
        table = {json.dumps([round(float(x), 4) for x in k]): v for k, v in cache.items()}
        return w.astype(np.float32), {"valid_ndcg@10": table, "best": best}

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if not hasattr(self, "models_"):
            raise NotFittedError("Blend is not fitted; call fit() first")
        out = None
        for w, m in zip(self.weights_, self.models_, strict=True):
            if w == 0:
                continue
            part = w * standardise(m.score(histories))
            out = part if out is None else out + part
        if out is None:
            return np.zeros((len(histories), 0), np.float32)
        return out

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Folder with params.json, blend.json (weights) and one sub-folder per member."""
        if not hasattr(self, "models_"):
            raise NotFittedError("Blend is not fitted; call fit() first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        params["members"] = [[n, dict(p)] for n, p in params["members"]]
        (path / "params.json").write_text(
            json.dumps({"name": self.name, "params": params}, default=str, indent=2)
        )
        (path / "blend.json").write_text(
            json.dumps(
                {
                    "format_version": 1,
                    "weights": [float(w) for w in self.weights_],
                    "members": [name for name, _ in self.members],
                }
            )
        )
        for i, m in enumerate(self.models_):
            m.save(path / f"member_{i}")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        meta = json.loads((path / "params.json").read_text())
        model = cls(**meta["params"])
        blend = json.loads((path / "blend.json").read_text())
        if blend.get("format_version") != 1:
            raise ValueError(f"Blend: artifact format {blend.get('format_version')} not supported")
        model.weights_ = np.asarray(blend["weights"], dtype=np.float32)
        model.models_ = [
            model_class(name).load(path / f"member_{i}") for i, name in enumerate(blend["members"])
        ]
        return model
