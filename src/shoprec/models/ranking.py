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
    # other targets of the same row must not push a target down
    scores[tgt_rows, targets.indices] = -np.inf
    higher = (scores[tgt_rows] >= tgt_scores[:, None]).sum(axis=1)
    return np.split(higher, targets.indptr[1:-1])


def ndcg_hr_at_k(ranks: list[np.ndarray], n_targets: np.ndarray, k: int) -> tuple[float, float]:
    """Mean NDCG@k and HR@k (any target in the top k) over rows.

    NDCG uses the ideal DCG of min(n_targets, k) relevant items; with one target it is
    1 / log2(rank + 2).
    """
    if len(ranks) == 0:
        return 0.0, 0.0
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    ndcg = np.empty(len(ranks))
    hr = np.empty(len(ranks))
    for i, r in enumerate(ranks):
        inside = r[r < k]
        ideal = disc[: min(int(n_targets[i]), k)].sum()
        ndcg[i] = disc[inside].sum() / ideal if ideal > 0 else 0.0
        hr[i] = 1.0 if len(inside) else 0.0
    return float(ndcg.mean()), float(hr.mean())


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
