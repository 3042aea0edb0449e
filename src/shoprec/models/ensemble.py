"""Score blending of several recommenders, with the weights chosen on validation data.

Each member's scores are standardised per user (zero mean, unit variance over all items),
so a collaborative model and a softmax sequence model live on one scale; the blend is their
weighted sum. With `weights=None` the weights are picked on the validation split by
NDCG@10 (a grid over the simplex for two or three members, coordinate search beyond), so
nothing depends on the dataset's name and nothing is tuned on test data.

`Best` is the product's default: sequential rules (transitions between nearby items) blended
with a SASRec sequence model trained under a fixed time budget.
"""

from __future__ import annotations

import itertools
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


def _candidate_weights(n: int, steps: int) -> list[np.ndarray]:
    grid = np.linspace(0.0, 1.0, steps + 1)
    out = []
    for combo in itertools.product(range(steps + 1), repeat=n - 1):
        if sum(combo) <= steps:
            w = [grid[c] for c in combo]
            out.append(np.array([*w, 1.0 - sum(w)]))
    return out


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
        Resolution of the weight search (weights are multiples of 1 / grid_steps).
    max_select_users : int or None
        Validation users used for the weight search (a fixed random subset when smaller).
    random_state : int
    """

    name = "blend"

    def __init__(
        self,
        members: Sequence[Sequence[Any]] = (),
        weights: Sequence[float] | None = None,
        grid_steps: int = 10,
        max_select_users: int | None = 20000,
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
        rows = np.arange(len(valid))
        if self.max_select_users and len(valid) > self.max_select_users:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(len(valid), self.max_select_users, replace=False))
        n = len(self.models_)
        candidates = _candidate_weights(n, self.grid_steps) if n <= 3 else None
        if candidates is None:  # many members: coordinate search from equal weights
            candidates = [np.full(n, 1.0 / n)]
            for i, step in itertools.product(range(n), (-0.1, 0.1)):
                w = np.full(n, 1.0 / n)
                w[i] = max(w[i] + step, 0.0)
                candidates.append(w / w.sum())
        ranks: list[list[np.ndarray]] = [[] for _ in candidates]
        for start in range(0, len(rows), batch_size):
            r = rows[start : start + batch_size]
            hist = [valid.histories[i] for i in r]
            parts = [standardise(m.score(hist)) for m in self.models_]
            for c, w in enumerate(candidates):
                blend = sum(wi * p for wi, p in zip(w, parts, strict=True))
                ranks[c].extend(target_ranks(blend, hist, valid.targets[r]))
        n_targets = np.diff(valid.targets[rows].indptr)
        scores = [ndcg_hr_at_k(rk, n_targets, 10)[0] for rk in ranks]
        best = int(np.argmax(scores))
        table = {
            json.dumps([round(float(x), 3) for x in w]): s
            for w, s in zip(candidates, scores, strict=True)
        }
        return candidates[best].astype(np.float32), {"valid_ndcg@10": table}

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


BEST_MEMBERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("seqrules", {}),
    (
        "sasrec",
        {
            "max_seconds": 420.0,
            "negatives": 256,
            "lr": 2e-3,
            "batch_size": 256,
            "max_eval_users": 5000,
        },
    ),
)


class Best(Blend):
    """The product's best configuration: `Blend` with `BEST_MEMBERS`, weights chosen on the
    validation split."""

    name = "best"

    def __init__(
        self,
        members: Sequence[Sequence[Any]] = BEST_MEMBERS,
        weights: Sequence[float] | None = None,
        grid_steps: int = 10,
        max_select_users: int | None = 20000,
        random_state: int = 0,
    ):
        super().__init__(members, weights, grid_steps, max_select_users, random_state)
