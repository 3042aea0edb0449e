"""Train / validation / test splits: leave-one-out, global temporal, random.

Leave-one-out follows the standard next-item protocol (`shared/data/README.md`): per user the
last item is the test target, the second-to-last the validation target, the rest trains. The
model input for a target is everything the user did before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData


@dataclass(eq=False)
class EvalSet:
    """Users to evaluate, what they did before (model input) and what they did next.

    Attributes
    ----------
    users : np.ndarray, shape (B,)
        User indices.
    histories : list of np.ndarray
        Per user, item indices in time order seen before the target(s): the model input and
        the items excluded from ranking.
    targets : sp.csr_matrix, shape (B, n_items)
        1 where an item is a target.
    """

    users: np.ndarray
    histories: list[np.ndarray]
    targets: sp.csr_matrix

    def __len__(self) -> int:
        return len(self.users)


@dataclass(eq=False)
class Split:
    """`train` fits models; `valid` picks settings and stops training; `test` reports."""

    train: InteractionData
    valid: EvalSet
    test: EvalSet
    protocol: str
    fingerprint: str


def _targets(n_items: int, rows: list[np.ndarray]) -> sp.csr_matrix:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(rows), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _fingerprint(data: InteractionData, settings: str) -> str:
    return hashlib.sha256((data.fingerprint() + settings).encode()).hexdigest()[:16]


def leave_one_out(data: InteractionData) -> Split:
    """Per user: last item is test, second-to-last validation, the rest training.

    Users with two interactions get a test target only; users with one only train.
    """
    seqs = data.sequences()
    order = data.order
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # position from the end of each interaction, in sorted order
    sorted_users = data.user_idx[order]
    rank_from_end = (starts[sorted_users] + counts[sorted_users] - 1) - np.arange(len(order))
    held = np.zeros(data.n_interactions, dtype=bool)
    is_test = rank_from_end == 0
    is_valid = (rank_from_end == 1) & (counts[sorted_users] >= 3)
    held[order[is_test & (counts[sorted_users] >= 2)]] = True
    held[order[is_valid]] = True
    train = data.subset(~held)

    test_users = np.flatnonzero(counts >= 2)
    valid_users = np.flatnonzero(counts >= 3)
    test = EvalSet(
        users=test_users,
        histories=[seqs[u][:-1] for u in test_users],
        targets=_targets(data.n_items, [seqs[u][-1:] for u in test_users]),
    )
    valid = EvalSet(
        users=valid_users,
        histories=[seqs[u][:-2] for u in valid_users],
        targets=_targets(data.n_items, [seqs[u][-2:-1] for u in valid_users]),
    )
    return Split(train, valid, test, "leave_one_out", _fingerprint(data, "loo"))


def _holdout_split(
    data: InteractionData, valid_mask: np.ndarray, test_mask: np.ndarray, protocol: str, fp: str
) -> Split:
    """Shared tail of the temporal and random splits: targets are the held-out items of each
    user; the history is what the user did before the held-out part (train, then valid)."""
    order = data.order
    train = data.subset(~(valid_mask | test_mask))

    def build(target_mask: np.ndarray, history_mask: np.ndarray) -> EvalSet:
        users = np.unique(data.user_idx[target_mask])
        users = users[np.isin(users, np.unique(data.user_idx[history_mask]))]
        o_hist = order[history_mask[order]]
        o_tgt = order[target_mask[order]]
        hist = _group(data.user_idx[o_hist], data.item_idx[o_hist], data.n_users)
        tgt = _group(data.user_idx[o_tgt], data.item_idx[o_tgt], data.n_users)
        return EvalSet(
            users, [hist[u] for u in users], _targets(data.n_items, [tgt[u] for u in users])
        )

    train_mask = ~(valid_mask | test_mask)
    valid = build(valid_mask, train_mask)
    test = build(test_mask, train_mask | valid_mask)
    return Split(train, valid, test, protocol, fp)


def _group(users: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    counts = np.bincount(users, minlength=n_users)
    return np.split(items, np.cumsum(counts)[:-1])


def temporal_split(
    data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1
) -> Split:
    """Global time cut: the latest `test_fraction` of interactions are test, the slice before
    them validation. Only users with earlier history are evaluated."""
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1 - test_fraction:
        raise ValueError("temporal_split: fractions must satisfy 0 < test, 0 <= valid, sum < 1")
    ts = data.timestamps
    t_test = np.quantile(ts, 1 - test_fraction)
    t_valid = np.quantile(ts, 1 - test_fraction - valid_fraction)
    test_mask = ts > t_test
    valid_mask = (ts > t_valid) & ~test_mask
    fp = _fingerprint(data, f"temporal:{test_fraction}:{valid_fraction}")
    return _holdout_split(data, valid_mask, test_mask, "temporal", fp)


def random_split(
    data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Each interaction goes to test / valid / train at random (seeded)."""
    rng = np.random.default_rng(seed)
    r = rng.random(data.n_interactions)
    test_mask = r < test_fraction
    valid_mask = (r >= test_fraction) & (r < test_fraction + valid_fraction)
    fp = _fingerprint(data, f"random:{test_fraction}:{valid_fraction}:{seed}")
    return _holdout_split(data, valid_mask, test_mask, "random", fp)
