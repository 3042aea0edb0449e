"""The training loop: schedules, early stopping with best-weight restore, clipping, time
budget, seeding. A tiny fake model with a known validation curve stands in for a recommender."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from shoprec.data.splits import EvalSet
from shoprec.training.loop import TrainingConfig, train
from shoprec.training.schedules import lr_factor

torch.set_num_threads(1)


class _Module(nn.Module):
    """One weight w, pulled towards `goal` by the loss."""

    def __init__(self, start: float, goal: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([start]))
        self.goal = goal

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w - self.goal) ** 2).sum() * batch


class _Model:
    """Ranks item 0 (the validation target) first while w < 0, second once w > 0."""

    def __init__(self, start: float, goal: float, batches: int = 4):
        self.module_ = _Module(start, goal)
        self.batches = batches

    def n_train_batches(self, batch_size: int) -> int:
        return self.batches

    def train_batches(self, rng: np.random.Generator, batch_size: int):
        for _ in range(self.batches):
            yield torch.tensor(1.0)

    def score(self, histories) -> np.ndarray:
        w = float(self.module_.w.detach())
        return np.tile(np.array([[-w, 0.0]], dtype=np.float32), (len(histories), 1))


def _valid() -> EvalSet:
    return EvalSet(
        np.array([0]),
        [np.array([], dtype=np.int64)],
        sp.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32)),
    )


def test_schedule_warmup_then_cosine_and_linear():
    assert lr_factor(0.05, 0.1, "cosine") == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1, "cosine") == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1, "cosine") == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1, "cosine") == pytest.approx(0.0)
    assert lr_factor(0.55, 0.1, "linear") == pytest.approx(0.5)
    assert lr_factor(1.0, 0.0, "linear", min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(0.7, 0.0, "constant") == 1.0
    with pytest.raises(ValueError):
        lr_factor(0.5, 0.0, "step")


def test_early_stopping_restores_the_best_weights():
    model = _Model(start=-3.0, goal=5.0)
    cfg = TrainingConfig(epochs=100, lr=0.3, patience=2, warmup=0.0, schedule="constant", clip=None)
    result = train(model, _valid(), cfg)
    assert result.stopped == "early_stopping"
    assert result.best_score == pytest.approx(1.0)
    # the last evaluated weight ranked the target second; the restored one ranks it first
    assert result.history[-1]["valid_ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert float(model.module_.w.detach()) < 0
    assert len(result.history) == result.best_epoch + 2


def test_clipping_bounds_the_gradient_norm():
    for clip, bounded in ((0.5, True), (None, False)):
        model = _Model(start=-100.0, goal=100.0, batches=1)
        train(model, None, TrainingConfig(epochs=1, lr=1e-3, clip=clip, warmup=0.0))
        norm = float(model.module_.w.grad.norm())
        assert (norm <= 0.5 + 1e-6) is bounded


def test_time_budget_stops_training():
    model = _Model(start=0.0, goal=1.0, batches=10_000)
    result = train(model, None, TrainingConfig(epochs=5, max_seconds=0.05))
    assert result.stopped == "time_budget"
    assert len(result.history) == 1


def test_without_validation_the_last_weights_are_kept():
    model = _Model(start=0.0, goal=1.0)
    result = train(model, None, TrainingConfig(epochs=30, lr=0.1, warmup=0.0, schedule="constant"))
    assert result.stopped == "epochs"
    assert float(model.module_.w.detach()) == pytest.approx(1.0, abs=0.2)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError):
        TrainingConfig(lr=0)
    with pytest.raises(ValueError):
        TrainingConfig(schedule="exp")
    with pytest.raises(TypeError):
        TrainingConfig(nonsense=1)  # type: ignore[call-arg]
