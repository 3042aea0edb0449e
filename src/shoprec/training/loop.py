"""The one training loop for every torch model.

A trainable model is a `Recommender` that, once `_prepare` has run inside its `fit`, exposes

- `module_`: an `nn.Module` with `loss(batch) -> scalar tensor`;
- `train_batches(rng, batch_size)`: the batches of one epoch (shuffled with `rng`);
- `n_train_batches(batch_size)`: how many that is;
- `score(histories)`: full-ranking scores, usable mid-training (early stopping).

The loop does AdamW (no decay on biases and norms), linear warm-up then cosine/linear decay
driven by whichever budget runs out first (epochs or `max_seconds`), gradient clipping,
early stopping on validation NDCG@k with the best weights kept in memory (and optionally
written to disk), seeding, and a tqdm progress bar. There is no trainer class per model.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from shoprec.data.splits import EvalSet
from shoprec.models.ranking import evaluate_ndcg
from shoprec.training.schedules import SCHEDULES, lr_factor


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (all have defaults)."""

    epochs: int = 200  # upper bound; early stopping or max_seconds usually ends sooner
    lr: float = 1e-3  # peak learning rate of AdamW
    batch_size: int = 256
    weight_decay: float = 0.0  # AdamW decoupled decay on weight matrices and embeddings
    warmup: float = 0.02  # fraction of the budget spent warming up
    schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.0  # learning-rate floor as a fraction of lr
    clip: float | None = 1.0  # max global gradient norm; None disables clipping
    patience: int = 5  # evaluations without improvement before stopping
    eval_every: int = 1  # epochs between validation evaluations
    eval_k: int = 10  # early-stopping metric: NDCG@eval_k
    max_eval_users: int | None = None  # evaluate on a fixed random subset of validation users
    seed: int = 0
    device: str = "cpu"
    max_seconds: float | None = None  # wall-clock budget for training (evaluation included)
    num_threads: int | None = None  # torch intra-op threads; None leaves torch's setting
    progress: bool = False  # tqdm progress bar
    checkpoint_dir: str | None = None  # write the best state_dict here when set

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("TrainingConfig: epochs, batch_size and lr must be positive")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainingConfig: schedule must be one of {SCHEDULES}")
        if not 0 <= self.warmup < 1:
            raise ValueError("TrainingConfig: warmup is a fraction in [0, 1)")


@dataclass
class TrainResult:
    """What happened: per-epoch log, best epoch and score, why training stopped."""

    best_epoch: int = 0
    best_score: float = -math.inf
    stopped: str = "epochs"  # epochs | early_stopping | time_budget | no_batches
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for a reproducible run."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _optimizer(module: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        # biases, norms and scalar gates are not decayed (standard AdamW practice)
        (no_decay if p.ndim < 2 or "norm" in name or name.startswith("ln") else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)


def _subset(evalset: EvalSet, n: int | None, seed: int) -> EvalSet:
    if n is None or len(evalset) <= n:
        return evalset
    rows = np.sort(np.random.default_rng(seed).choice(len(evalset), n, replace=False))
    return EvalSet(evalset.users[rows], [evalset.histories[r] for r in rows], evalset.targets[rows])


def train(model: Any, valid: EvalSet | None, cfg: TrainingConfig) -> TrainResult:
    """Train `model.module_` in place; with `valid`, stop early and restore the best weights.

    Returns
    -------
    TrainResult
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    module: torch.nn.Module = model.module_
    module.to(cfg.device)
    opt = _optimizer(module, cfg)
    steps_per_epoch = model.n_train_batches(cfg.batch_size)
    result = TrainResult()
    if steps_per_epoch == 0:
        result.stopped = "no_batches"
        return result
    total_steps = cfg.epochs * steps_per_epoch
    valid = (
        _subset(valid, cfg.max_eval_users, cfg.seed) if valid is not None and len(valid) else None
    )
    best_state: dict[str, torch.Tensor] | None = None
    bad_evals, step = 0, 0
    start = time.perf_counter()

    def progress() -> float:
        p = step / total_steps
        if cfg.max_seconds:
            p = max(p, (time.perf_counter() - start) / cfg.max_seconds)
        return p

    bar = tqdm(total=total_steps, disable=not cfg.progress, desc=type(model).__name__, leave=False)
    for epoch in range(1, cfg.epochs + 1):
        module.train()
        losses: list[float] = []
        out_of_time = False
        for batch in model.train_batches(rng, cfg.batch_size):
            factor = lr_factor(progress(), cfg.warmup, cfg.schedule, cfg.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * factor
            loss = module.loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            if cfg.max_seconds and time.perf_counter() - start >= cfg.max_seconds:
                out_of_time = True
                break
        entry = {
            "epoch": float(epoch),
            "loss": float(np.mean(losses)) if losses else math.nan,
            "lr": cfg.lr * lr_factor(progress(), cfg.warmup, cfg.schedule, cfg.min_lr_ratio),
            "seconds": time.perf_counter() - start,
        }
        if valid is not None and (
            epoch % cfg.eval_every == 0 or out_of_time or epoch == cfg.epochs
        ):
            module.eval()
            score = evaluate_ndcg(model, valid, cfg.eval_k)
            entry[f"valid_ndcg@{cfg.eval_k}"] = score
            if score > result.best_score:
                result.best_score, result.best_epoch, bad_evals = score, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
                if cfg.checkpoint_dir:
                    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
                    torch.save(best_state, Path(cfg.checkpoint_dir) / "best.pt")
            else:
                bad_evals += 1
        result.history.append(entry)
        bar.set_postfix({k: round(v, 4) for k, v in entry.items() if k != "epoch"})
        if out_of_time:
            result.stopped = "time_budget"
            break
        if valid is not None and bad_evals >= cfg.patience:
            result.stopped = "early_stopping"
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history)
    module.eval()
    result.seconds = time.perf_counter() - start
    return result


def train_recommender(model: Any, valid: EvalSet | None, **options: Any) -> TrainResult:
    """Entry point used by torch models' `fit`: unknown options are errors."""
    return train(model, valid, TrainingConfig(**options))
