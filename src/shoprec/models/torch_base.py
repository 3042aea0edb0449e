"""Shared plumbing of the torch models: training examples, scoring, artifacts.

A torch model subclasses `TorchRecommender` and implements

- `_spec(data) -> dict`: everything needed to rebuild its module (plain ints and arrays);
- `_build(spec) -> nn.Module`: the module, with `loss(batch)` and `score_items(seqs)`
  (`seqs` (B, L) right-aligned item indices padded with `n_items`, returning (B, n_items)).

`fit` prepares next-item training sequences and hands the model to the one training loop
(`shoprec.training.loop`). Models sit below training in the layers, so the loop is located by
name, as the registry locates models (dependency inversion; no model imports `training`).

Artifacts are self-describing: `params.json` (name and constructor arguments) plus
`state.pkl` holding the format version, the module spec, the state_dict and the training log.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import NotFittedError, Recommender
from shoprec.models.layers import pad_histories

FORMAT_VERSION = 1
TRAINER = "shoprec.training.loop:train_recommender"
# constructor arguments that are passed through to the training loop's TrainingConfig
TRAINING_KEYS = (
    "epochs",
    "lr",
    "batch_size",
    "weight_decay",
    "warmup",
    "clip",
    "patience",
    "max_seconds",
    "max_eval_users",
    "device",
    "num_threads",
    "progress",
)


class TorchRecommender(Recommender):
    """Base of the torch sequence models (history in, scores over all items out)."""

    max_len: int = 50

    # ------------------------------------------------------------ to implement
    def _spec(self, data: InteractionData) -> dict[str, Any]:
        raise NotImplementedError

    def _build(self, spec: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    # -------------------------------------------------------------- training
    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if data.n_items < 1 or data.n_interactions < 1:
            raise ValueError(f"{type(self).__name__}.fit: no interactions to learn from")
        if self.max_len < 1:
            raise ValueError("max_len must be >= 1")
        torch.manual_seed(self.random_state)
        self.spec_ = self._spec(data)
        self.n_items_ = data.n_items
        self.module_ = self._build(self.spec_)
        self._prepare(data)
        options = {k: getattr(self, k) for k in TRAINING_KEYS if hasattr(self, k)}
        module_name, func = TRAINER.split(":")
        trainer = getattr(importlib.import_module(module_name), func)
        result = trainer(self, valid, seed=self.random_state, **options)
        self.train_log_ = result.as_dict()
        self._examples = None  # training arrays are not part of the model
        return self

    def _prepare(self, data: InteractionData) -> None:
        """Next-item training windows: per user, input s[:-1] and target s[1:], the last
        `max_len` positions (and, with `all_windows`, earlier non-overlapping windows too)."""
        inputs, targets = [], []
        windows = getattr(self, "all_windows", False)
        for seq in data.sequences():
            if len(seq) < 2:
                continue
            end = len(seq)
            while end >= 2:
                lo = max(0, end - self.max_len - 1)
                inputs.append(seq[lo : end - 1])
                targets.append(seq[lo + 1 : end])
                if not windows:
                    break
                end = lo + 1
        self._examples = (inputs, targets)

    def n_train_batches(self, batch_size: int) -> int:
        return -(-len(self._examples[0]) // batch_size)

    def train_batches(self, rng: np.random.Generator, batch_size: int) -> Iterator[dict]:
        """Shuffled batches {"items": (B, L), "targets": (B, L)}, right-aligned, pad =
        n_items in both (the module ignores padded targets)."""
        inputs, targets = self._examples
        # Length bucketing: most histories are far shorter than max_len, so batches of
        # similar lengths cut padding (and CPU time) several-fold. Ties are broken at random
        # and the batch order is shuffled, so every epoch differs.
        lengths = np.fromiter((len(x) for x in inputs), dtype=np.int64, count=len(inputs))
        order = np.lexsort((rng.random(len(inputs)), lengths))
        starts = rng.permutation(np.arange(0, len(order), batch_size))
        pad = self.n_items_
        for start in starts:
            rows = order[start : start + batch_size]
            yield {
                "items": pad_histories([inputs[r] for r in rows], self.max_len, pad),
                "targets": pad_histories([targets[r] for r in rows], self.max_len, pad),
            }

    # --------------------------------------------------------------- scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def score(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        self._check_fitted()
        module = self.module_
        was_training = module.training
        module.eval()
        device = next(module.parameters()).device
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(histories), batch_size):
                hist = histories[start : start + batch_size]
                seqs = pad_histories(hist, self.max_len, self.n_items_).to(device)
                out[start : start + len(hist)] = module.score_items(seqs).float().cpu().numpy()
        module.train(was_training)
        return out

    # ----------------------------------------------------------- persistence
    def _state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "model": type(self).__name__,
            "n_items": self.n_items_,
            "spec": self.spec_,
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "train_log": getattr(self, "train_log_", None),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        version = state.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{type(self).__name__}: artifact format version {version} is not supported "
                f"(this build reads version {FORMAT_VERSION}); retrain the model"
            )
        if state.get("model") != type(self).__name__:
            raise ValueError(f"artifact holds a {state.get('model')}, not a {type(self).__name__}")
        self.n_items_ = state["n_items"]
        self.spec_ = state["spec"]
        self.train_log_ = state["train_log"]
        self.module_ = self._build(self.spec_)
        self.module_.load_state_dict(state["state_dict"])
        self.module_.eval()


def tag_csr(data: InteractionData) -> tuple[np.ndarray, np.ndarray, int]:
    """Item attributes as CSR (indptr (n_items + 1,), indices, n_tags) from the item table.

    Uses the `tags` column and, when present, `category` and `brand` (as "category=x" tags).
    Items without attributes get an empty row.
    """
    n = data.n_items
    rows: list[list[str]] = [[] for _ in range(n)]
    table = data.item_table
    if table is not None:
        for col in ("tags", "category", "brand"):
            if col not in table:
                continue
            for i, v in enumerate(table[col].tolist()[:n]):
                if isinstance(v, list | tuple | np.ndarray):
                    rows[i].extend(f"{col}={t}" for t in v)
                elif v is not None and v == v and str(v) != "":
                    rows[i].append(f"{col}={v}")
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for r in rows:
        for t in dict.fromkeys(r):
            indices.append(vocab.setdefault(t, len(vocab)))
        indptr.append(len(indices))
    return np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int64), len(vocab)
