"""Full-ranking primitives shared by early stopping (training) and evaluation.

They live with the models because both `training` and `evaluation` may import `models` but
not each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import histories_to_csr


def target_ranks(
    scores: np.ndarray,
    histories: Sequence[np.ndarray],
    targets: sp.csr_matrix,
    exclude_history: bool = True,
) -> list[np.ndarray]:
    """0-based rank of each target item among all items, per row, history masked.

    Ties count against the target (a target tied with another item ranks below it), so a
    model that scores everything equally gets no credit.

    Parameters
    ----------
    scores : np.ndarray, shape (B, n_items)
    histories : B arrays of item indices (masked when `exclude_history`)
    targets : CSR, shape (B, n_items)

    Returns
    -------
    list of np.ndarray: per row, the ranks of its targets.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    n_items = scores.shape[1]
    tgt_rows = np.repeat(np.arange(targets.shape[0]), np.diff(targets.indptr))
    tgt_scores = scores[tgt_rows, targets.indices]
    if exclude_history:
        h = histories_to_csr(histories, n_items)
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        scores[rows, h.indices] = -np.inf
    # Position in the ranked list: non-target items scoring >= the target (ties count
    # against it), plus the row's other targets scoring strictly higher. Two targets never
    # share a position, so NDCG stays <= 1 with several targets.
    scores[tgt_rows, targets.indices] = -np.inf
    higher = (scores[tgt_rows] >= tgt_scores[:, None]).sum(axis=1)
    per_row = np.split(tgt_scores, targets.indptr[1:-1])
    above = [(s[None, :] > s[:, None]).sum(axis=1) + _tie_order(s) for s in per_row]
    ranks = higher + (np.concatenate(above) if above else 0)
    return np.split(ranks, targets.indptr[1:-1])


def _tie_order(s: np.ndarray) -> np.ndarray:
    """Among targets with equal scores, 0, 1, 2... in column order (one list position each)."""
    if len(s) < 2:
        return np.zeros(len(s), dtype=np.int64)
    same = s[None, :] == s[:, None]
    return np.tril(same, k=-1).sum(axis=1)


def flatten_ranks(ranks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-row ranks into flat arrays.

    Returns
    -------
    flat : np.ndarray, shape (T,)
        Every target's 0-based rank.
    rows : np.ndarray, shape (T,)
        The row each rank belongs to.
    """
    lengths = np.fromiter((len(r) for r in ranks), dtype=np.int64, count=len(ranks))
    flat = np.concatenate(ranks).astype(np.int64) if len(ranks) else np.zeros(0, np.int64)
    return flat, np.repeat(np.arange(len(ranks)), lengths)


def per_row_at_k(
    flat: np.ndarray, rows: np.ndarray, n_targets: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """Per-row hit, NDCG, precision and recall at k from flat target ranks (vectorised).

    Parameters
    ----------
    flat, rows : np.ndarray, shape (T,)
        Target ranks (0-based) and their row (see `flatten_ranks`).
    n_targets : np.ndarray, shape (B,)
        Number of targets per row.
    k : int

    Returns
    -------
    dict of np.ndarray, shape (B,) each: "hr", "ndcg", "precision", "recall".
    NDCG uses the ideal DCG of min(n_targets, k) relevant items.
    """
    n_rows = len(n_targets)
    n_targets = np.asarray(n_targets, dtype=np.float64)
    inside = flat < k
    hits = np.bincount(rows[inside], minlength=n_rows).astype(np.float64)
    dcg = np.bincount(rows[inside], weights=1.0 / np.log2(flat[inside] + 2.0), minlength=n_rows)
    ideal_cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    ideal = ideal_cum[np.minimum(n_targets, k).astype(np.int64)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ndcg = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)
        recall = np.where(n_targets > 0, hits / np.maximum(n_targets, 1.0), 0.0)
    return {
        "hr": (hits > 0).astype(np.float64),
        "ndcg": ndcg,
        "precision": hits / float(k),
        "recall": recall,
    }


def reciprocal_rank(flat: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, 1 / (1 + rank of the best-ranked target); 0 for rows without targets.

    Shape (B,).
    """
    best = np.full(n_rows, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, rows, flat)
    out = np.zeros(n_rows)
    has = best < np.iinfo(np.int64).max
    out[has] = 1.0 / (best[has] + 1.0)
    return out


def ndcg_hr_at_k(ranks: list[np.ndarray], n_targets: np.ndarray, k: int) -> tuple[float, float]:
    """Mean NDCG@k and HR@k (any target in the top k) over rows.

    NDCG uses the ideal DCG of min(n_targets, k) relevant items; with one target it is
    1 / log2(rank + 2).
    """
    if len(ranks) == 0:
        return 0.0, 0.0
    flat, rows = flatten_ranks(ranks)
    m = per_row_at_k(flat, rows, np.asarray(n_targets), k)
    return float(m["ndcg"].mean()), float(m["hr"].mean())


def evaluate_ndcg(model, evalset, k: int = 10, batch_size: int = 1024) -> float:
    """NDCG@k of `model` on `evalset` (full ranking, history masked): the early-stopping
    criterion."""
    ranks: list[np.ndarray] = []
    for start in range(0, len(evalset), batch_size):
        stop = min(start + batch_size, len(evalset))
        hist = evalset.histories[start:stop]
        ranks.extend(target_ranks(model.score(hist), hist, evalset.targets[start:stop]))
    n_targets = np.diff(evalset.targets.indptr)
    return ndcg_hr_at_k(ranks, n_targets, k)[0]


def sample_rows(evalset, n: int, seed: int = 0):
    """At most `n` rows of an EvalSet (a seeded sample, in the original order)."""
    if len(evalset) <= n:
        return evalset
    rows = np.sort(np.random.default_rng(seed).choice(len(evalset), n, replace=False))
    return type(evalset)(
        evalset.users[rows], [evalset.histories[i] for i in rows], evalset.targets[rows]
    )


def pick_on_validation(
    model, attribute: str, grid: Sequence, valid, k: int = 10, max_users: int = 10000
) -> tuple[object, dict]:
    """Set `model.<attribute>` to each value of `grid`, keep the best by validation NDCG@k.

    For settings that only change scoring (no refit). Ties go to the earlier grid value.
    Returns the chosen value and {value: NDCG@k}.
    """
    sample = sample_rows(valid, max_users)
    scores = {}
    for value in grid:
        setattr(model, attribute, value)
        scores[value] = evaluate_ndcg(model, sample, k=k)
    best = max(scores, key=lambda v: scores[v])  # max keeps the first of equal values
    setattr(model, attribute, best)
    return best, scores


def recent_items(histories: Sequence[np.ndarray], last: int, n_items: int) -> list[np.ndarray]:
    """The last `last` items of each history (0: all), dropping indices outside the catalog."""
    out = []
    for h in histories:
        r = np.asarray(h, dtype=np.int64)[-last:] if last else np.asarray(h, dtype=np.int64)
        out.append(r[(r >= 0) & (r < n_items)])
    return out


def recency_weights(histories: Sequence[np.ndarray], n_items: int, recency: float) -> sp.csr_matrix:
    """(B, n_items) CSR: the item p steps before the latest weighs recency**p (summed)."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    if lengths.sum():
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    else:
        cols = np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(histories)), lengths)
    back = np.cumsum(lengths)[rows] - 1 - np.arange(len(cols))
    vals = np.power(float(recency), back) if recency != 1 else np.ones(len(cols))
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), n_items), dtype=np.float32)
    m.sum_duplicates()
    return m
