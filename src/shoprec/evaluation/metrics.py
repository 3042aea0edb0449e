"""Offline metrics: accuracy from target ranks, beyond-accuracy from top-K lists.

Accuracy metrics (HR, NDCG, MRR, precision, recall @K) start from the 0-based rank of each
target among all items (`shoprec.models.ranking.target_ranks`) and are computed per row, so
any slice of users is a mean over a mask. Beyond-accuracy metrics take the recommended lists,
`topk` of shape (B, K) item indices, best first:

- catalog coverage: share of the catalog that appears in at least one list;
- intra-list diversity (Ziegler et al., WWW 2005): mean pairwise cosine distance of the items
  in a list, over category / attribute vectors or learned embeddings;
- novelty: mean self-information -log2(p(i)) of recommended items, p(i) the share of users
  who interacted with i (Zhou et al., PNAS 2010);
- popularity bias: average popularity of recommended items (ARP, Abdollahpouri et al.) and
  the Gini coefficient of item exposure over the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models.ranking import flatten_ranks, per_row_at_k, reciprocal_rank

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
HISTORY_BUCKETS: tuple[int, ...] = (0, 5, 10, 20, 50)
"""Lower edges of the history-length slices: [0,5), [5,10), [10,20), [20,50), [50, inf)."""


# ------------------------------------------------------------------------------- accuracy
def accuracy_per_row(
    ranks: Sequence[np.ndarray], n_targets: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """HR, NDCG, precision and recall @K for every K, and MRR, per row.

    Parameters
    ----------
    ranks : B arrays of 0-based target ranks (from `target_ranks`)
    n_targets : np.ndarray, shape (B,)
    ks : cut-offs

    Returns
    -------
    dict name -> np.ndarray of shape (B,), names like "HR@10", "NDCG@10", "P@10", "R@10", "MRR".
    """
    flat, rows = flatten_ranks(ranks)
    n_targets = np.asarray(n_targets)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        m = per_row_at_k(flat, rows, n_targets, int(k))
        out[f"HR@{k}"] = m["hr"]
        out[f"NDCG@{k}"] = m["ndcg"]
        out[f"P@{k}"] = m["precision"]
        out[f"R@{k}"] = m["recall"]
    out["MRR"] = reciprocal_rank(flat, rows, len(n_targets))
    return out


def summarise(per_row: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """Mean of each per-row metric, over the rows where `mask` is true (all when None)."""
    out = {}
    for name, values in per_row.items():
        v = values if mask is None else values[mask]
        out[name] = float(v.mean()) if len(v) else float("nan")
    return out


# ------------------------------------------------------------------------ beyond accuracy
def catalog_coverage(topk: np.ndarray, n_items: int) -> float:
    """Share of the `n_items` catalog recommended at least once; `topk` shape (B, K)."""
    if n_items <= 0:
        return 0.0
    valid = topk[topk >= 0]
    return float(len(np.unique(valid)) / n_items)


def exposure(topk: np.ndarray, n_items: int) -> np.ndarray:
    """How many lists each item appears in, shape (n_items,)."""
    valid = topk[topk >= 0]
    return np.bincount(valid.ravel(), minlength=n_items).astype(np.float64)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative `values` (0 = equal exposure, ~1 = one item gets all)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    total = v.sum()
    if n == 0 or total <= 0:
        return 0.0
    cum = np.cumsum(v)
    return float((n + 1 - 2 * (cum / total).sum()) / n)


def average_popularity(topk: np.ndarray, item_popularity: np.ndarray) -> float:
    """Mean over lists of the mean training popularity of the listed items (ARP)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    if topk.size == 0:
        return 0.0
    return float(pop[topk].mean())


def novelty(topk: np.ndarray, item_popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2(p(i)) of recommended items, in bits.

    p(i) = (popularity(i) + 1) / (n_users + 1), smoothed so that unseen items are finite.
    `item_popularity` counts users (or interactions) per item, shape (n_items,).
    """
    if topk.size == 0:
        return 0.0
    pop = np.asarray(item_popularity, dtype=np.float64)
    p = (pop + 1.0) / (float(n_users) + 1.0)
    return float(-np.log2(np.minimum(p[topk], 1.0)).mean())


def intra_list_diversity(topk: np.ndarray, item_vectors: np.ndarray | sp.spmatrix) -> float:
    """Mean pairwise cosine distance 1 - cos(v_i, v_j) within each list, averaged over lists.

    Parameters
    ----------
    topk : np.ndarray, shape (B, K), K >= 2
    item_vectors : array or sparse matrix, shape (n_items, d)
        Category one-hots, attribute multi-hots or embeddings. An all-zero vector (an item
        with no attributes) has cosine 0 with everything, i.e. counts as different.

    Notes
    -----
    Uses sum_{i != j} cos(v_i, v_j) = ||sum_i u_i||^2 - sum_i ||u_i||^2 with u = v / ||v||, so
    the cost is O(B K d) rather than O(B K^2 d).
    """
    b, k = topk.shape
    if k < 2 or b == 0:
        return 0.0
    if sp.issparse(item_vectors):
        v = sp.csr_matrix(item_vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        u = sp.diags(inv) @ v
        # selector (B, n_items) with K ones per row, so sel @ u sums each list's vectors
        sel = sp.csr_matrix(
            (np.ones(b * k), topk.ravel(), np.arange(0, b * k + 1, k)), shape=(b, v.shape[0])
        )
        s = sel @ u
        sum_sq = np.asarray(s.multiply(s).sum(axis=1)).ravel()
        self_sq = (norms[topk] > 0).sum(axis=1).astype(np.float64)
    else:
        v = np.asarray(item_vectors, dtype=np.float64)
        norms = np.linalg.norm(v, axis=1)
        u = v / np.where(norms > 0, norms, 1.0)[:, None]
        s = u[topk].sum(axis=1)
        sum_sq = (s * s).sum(axis=1)
        self_sq = (norms[topk] > 0).sum(axis=1).astype(np.float64)
    mean_cos = (sum_sq - self_sq) / (k * (k - 1))
    return float((1.0 - mean_cos).mean())


def attribute_vectors(item_table: pd.DataFrame | None, n_items: int) -> sp.csr_matrix | None:
    """Sparse multi-hot item vectors from `item_table` (`tags`, plus `category` and `brand`).

    Returns None when the table has no usable column. Shape (n_items, n_attributes).
    """
    if item_table is None or len(item_table) == 0:
        return None
    rows: list[int] = []
    names: list[str] = []
    for col in ("tags", "category", "brand"):
        if col not in item_table:
            continue
        for i, value in enumerate(item_table[col].tolist()[:n_items]):
            if isinstance(value, list | tuple | np.ndarray):
                vals = [f"{col}={x}" for x in value]
            elif isinstance(value, str) and value:
                vals = [f"{col}={value}"]
            else:
                vals = []
            rows.extend([i] * len(vals))
            names.extend(vals)
    if not names:
        return None
    codes, uniques = pd.factorize(pd.Series(names))
    m = sp.csr_matrix(
        (np.ones(len(codes)), (np.asarray(rows), codes)), shape=(n_items, len(uniques))
    )
    m.data[:] = 1.0
    return m


# ---------------------------------------------------------------------------------- slices
def history_length_slices(
    lengths: np.ndarray, edges: Sequence[int] = HISTORY_BUCKETS
) -> dict[str, np.ndarray]:
    """Boolean masks of users by history length: names like "hist[5,10)" and "hist[50,inf)"."""
    lengths = np.asarray(lengths)
    out = {}
    bounds = list(edges) + [np.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        hi_s = "inf" if np.isinf(hi) else str(int(hi))
        out[f"hist[{int(lo)},{hi_s})"] = (lengths >= lo) & (lengths < hi)
    return out


def long_tail_items(item_popularity: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask, shape (n_items,): items outside the `head_share` most popular items."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    n_head = int(np.ceil(head_share * len(pop)))
    head = np.argsort(-pop, kind="stable")[:n_head]
    tail = np.ones(len(pop), dtype=bool)
    tail[head] = False
    return tail


def target_slices(targets: sp.csr_matrix, tail: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of rows whose targets are all in the long tail / any in the head."""
    t = sp.csr_matrix(targets)
    n_tail = np.asarray(t @ tail.astype(np.float64)).ravel()
    n = np.diff(t.indptr)
    return {"target=tail": (n > 0) & (n_tail == n), "target=head": n_tail < n}
