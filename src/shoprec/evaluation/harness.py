"""The offline evaluation harness: full ranking over all items, batched and vectorised.

`evaluate(model, evalset, train)` scores every evaluation user against the whole catalog in
batches, masks the user's history, and returns accuracy (from target ranks), beyond-accuracy
(from the top-K lists) and per-slice results. `run(data, names, protocol)` splits the data,
fits each registered model on the training part (validation passed for early stopping or
settings), and evaluates it on the test part, timing both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprec.config import SplitConfig
from shoprec.data.interactions import InteractionData, histories_to_csr
from shoprec.data.splits import EvalSet, Split
from shoprec.evaluation import metrics as M
from shoprec.evaluation.protocols import make_split
from shoprec.models import registry
from shoprec.models.base import Recommender, top_k
from shoprec.models.ranking import evaluate_ndcg, target_ranks

BEST_FALLBACK_CANDIDATES: tuple[str, ...] = ("itemknn", "itemknn_seq", "ease", "als")
"""Classic models `best` chooses from, on validation NDCG@10, until a `best` is registered."""


@dataclass
class ModelResult:
    """One model's figures on one split."""

    model: str
    metrics: dict[str, float]
    train_seconds: float
    eval_seconds: float
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    chosen: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Everything `shoprec evaluate` writes: dataset sizes, protocol and per-model results."""

    dataset: dict[str, int]
    protocol: str
    results: list[ModelResult]


def mask_history_(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set the scores of each row's history items to -inf, in place. Shape (B, n_items)."""
    if len(histories):
        h = histories_to_csr(histories, scores.shape[1])
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        scores[rows, h.indices] = -np.inf
    return scores


def evaluate(
    model: Recommender,
    evalset: EvalSet,
    train: InteractionData,
    ks: Sequence[int] = M.DEFAULT_KS,
    batch_size: int = 1024,
    item_vectors: np.ndarray | sp.spmatrix | None = None,
    list_k: int = 10,
    with_slices: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Full-ranking evaluation of a fitted model.

    Parameters
    ----------
    model : fitted Recommender
    evalset : EvalSet with B users (histories are the model input and are excluded)
    train : the training interactions (item popularity for novelty, bias and slices)
    ks : cut-offs for accuracy metrics
    batch_size : users scored at once; peak memory is about 3 * batch_size * n_items floats
    item_vectors : (n_items, d) vectors for intra-list diversity; by default the attribute
        vectors of `train.item_table` (tags / category / brand) when present
    list_k : length of the lists the beyond-accuracy metrics look at
    progress : called with (users done, users total) after each batch

    Returns
    -------
    metrics : name -> mean over users ("HR@10", "NDCG@10", "MRR", "coverage@10", ...)
    slices : slice name -> metrics restricted to that slice (history length, tail targets)
    """
    n = len(evalset)
    n_items = train.n_items
    kmax = max(max(ks), list_k)
    ranks: list[np.ndarray] = []
    lists = np.zeros((n, min(list_k, n_items)), dtype=np.int64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        hist = evalset.histories[start:stop]
        scores = np.array(model.score(hist), dtype=np.float32, copy=True)
        if scores.shape != (stop - start, n_items):
            raise ValueError(
                f"{type(model).__name__}.score returned shape {scores.shape}, "
                f"expected {(stop - start, n_items)}"
            )
        ranks.extend(target_ranks(scores, hist, evalset.targets[start:stop]))
        idx, _ = top_k(mask_history_(scores, hist), kmax)
        lists[start:stop] = idx[:, : lists.shape[1]]
        if progress is not None:
            progress(stop, n)

    n_targets = np.diff(evalset.targets.indptr)
    per_row = M.accuracy_per_row(ranks, n_targets, ks)
    metrics = M.summarise(per_row)

    user_pop = np.asarray((train.matrix() > 0).sum(axis=0)).ravel().astype(np.float64)
    metrics[f"coverage@{list_k}"] = M.catalog_coverage(lists, n_items)
    metrics[f"novelty@{list_k}"] = M.novelty(lists, user_pop, train.n_users)
    metrics[f"ARP@{list_k}"] = M.average_popularity(lists, user_pop)
    metrics[f"gini@{list_k}"] = M.gini(M.exposure(lists, n_items))
    vectors = (
        item_vectors if item_vectors is not None else M.attribute_vectors(train.item_table, n_items)
    )
    if vectors is not None:
        metrics[f"ILD@{list_k}"] = M.intra_list_diversity(lists, vectors)

    slices: dict[str, dict[str, float]] = {}
    if with_slices and n:
        lengths = np.fromiter((len(h) for h in evalset.histories), dtype=np.int64, count=n)
        masks = M.history_length_slices(lengths)
        masks.update(M.target_slices(evalset.targets, M.long_tail_items(user_pop)))
        for name, mask in masks.items():
            if mask.any():
                s = M.summarise(per_row, mask)
                s["users"] = int(mask.sum())
                slices[name] = s
    return metrics, slices


def fit_best_fallback(
    split: Split, candidates: Sequence[str] = BEST_FALLBACK_CANDIDATES, batch_size: int = 1024
) -> tuple[Recommender, str]:
    """Fit each candidate on `split.train` and keep the best by validation NDCG@10.

    Chosen on the validation split only; the test split is never looked at.
    """
    best: tuple[float, str, Recommender] | None = None
    for name in candidates:
        model = registry.create(name).fit(split.train, valid=split.valid)
        ndcg = evaluate_ndcg(model, split.valid, k=10, batch_size=batch_size)
        if best is None or ndcg > best[0]:
            best = (ndcg, name, model)
    if best is None:
        raise ValueError("fit_best_fallback: no candidates")
    return best[2], best[1]


def fit_model(
    name: str, split: Split, params: dict[str, Any] | None = None, batch_size: int = 1024
) -> tuple[Recommender, str]:
    """Create and fit the registered model `name`; `best` falls back to validation choice."""
    params = params or {}
    if name == "best" and "best" not in registry.available():
        model, chosen = fit_best_fallback(split, batch_size=batch_size)
        return model, f"classic fallback, chose {chosen} on validation NDCG@10"
    return registry.create(name, **params).fit(split.train, valid=split.valid), ""


def run(
    data: InteractionData,
    names: Sequence[str],
    protocol: str = "loo",
    params: dict[str, dict[str, Any]] | None = None,
    split_cfg: SplitConfig | None = None,
    ks: Sequence[int] = M.DEFAULT_KS,
    batch_size: int = 1024,
    item_vectors: np.ndarray | sp.spmatrix | None = None,
    on_result: Callable[[ModelResult], None] | None = None,
) -> Report:
    """Split `data` with `protocol`, then fit and evaluate each model on the test split."""
    split = make_split(data, protocol, split_cfg)
    results = []
    for name in names:
        t0 = time.perf_counter()
        model, note = fit_model(name, split, (params or {}).get(name), batch_size)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics, slices = evaluate(
            model, split.test, split.train, ks, batch_size, item_vectors=item_vectors
        )
        eval_s = time.perf_counter() - t0
        res = ModelResult(
            model=name,
            metrics=metrics,
            train_seconds=train_s,
            eval_seconds=eval_s,
            slices=slices,
            params=_jsonable(model.get_params()),
            note=note,
            chosen=learned_settings(model),
        )
        results.append(res)
        if on_result is not None:
            on_result(res)
    dataset = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.n_interactions,
    }
    return Report(dataset=dataset, protocol=protocol, results=results)


def learned_settings(model: Recommender) -> dict[str, Any]:
    """What fit chose on validation: scalar learned state (`l2_`, `recency_`, ...), short
    vectors (blend weights) and flat dicts of scalars (a ranker's summary)."""
    out: dict[str, Any] = {}
    for k, v in vars(model).items():
        if not k.endswith("_") or k.startswith("_"):
            continue
        if isinstance(v, int | float | str | bool | np.generic):
            out[k] = v.item() if isinstance(v, np.generic) else v
        elif isinstance(v, np.ndarray) and v.ndim == 1 and v.size <= 32:
            out[k] = [x.item() for x in v]
        elif isinstance(v, dict) and all(
            isinstance(x, int | float | str | bool) for x in v.values()
        ):
            out[k] = dict(v)
    return out


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        out[k] = v if isinstance(v, int | float | str | bool | type(None) | list | dict) else str(v)
    return out
