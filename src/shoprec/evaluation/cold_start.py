"""Cold-start protocols: new items and new users.

Cold items (`cold_item_split`): a random set of items is held out of training entirely (every
interaction with them is removed; they stay in the id map and item table, so content models
know them). The users who interacted with a held-out item are evaluated: the model input is
the user's warm items before their first held-out interaction, the targets are the held-out
items the user interacted with. Half of the held-out items serve validation, half test.
`evaluate_among` ranks only among the held-out items (the "new arrivals" shelf and the
exploration slots, where new items compete with each other); the registered protocol
`cold-items` gives a `Split` for the standard harness, which ranks them among *all* items.

Cold users (`cold_user_split`): a random set of users (with at least max(ns) + 1 events) is
held out of training entirely. For n in `ns` (0, 1, 3, 5), each is evaluated on their first n
events as history and the (n+1)-th as target, against warm users under leave-one-out (full
ranking, history excluded, as in `shared/data/README.md`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprec.config import SplitConfig
from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet, Split, leave_one_out
from shoprec.models.ranking import ndcg_hr_at_k, target_ranks

KS: tuple[int, ...] = (5, 10, 20)
COLD_USER_NS: tuple[int, ...] = (0, 1, 3, 5)


def _targets(rows: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.concatenate(rows).astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(rows), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


# ----------------------------------------------------------------------------- cold items
@dataclass(eq=False)
class ColdItemSplit:
    """Training data without the held-out items, and validation / test sets of users."""

    train: InteractionData
    valid: EvalSet
    test: EvalSet
    cold_valid: np.ndarray
    cold_test: np.ndarray

    @property
    def cold(self) -> np.ndarray:
        return np.union1d(self.cold_valid, self.cold_test)


def _cold_evalset(
    data: InteractionData, targets_mask: np.ndarray, cold_mask: np.ndarray
) -> EvalSet:
    users, hists, tgts = [], [], []
    for u, seq in enumerate(data.sequences()):
        hit = targets_mask[seq]
        if not hit.any():
            continue
        first = int(np.argmax(hit))
        before = seq[:first]
        before = before[~cold_mask[before]]
        if len(before) == 0:
            continue
        users.append(u)
        hists.append(before)
        tgts.append(np.unique(seq[hit]))
    return EvalSet(np.array(users, dtype=np.int64), hists, _targets(tgts, data.n_items))


def cold_item_split(
    data: InteractionData, fraction: float = 0.1, seed: int = 0, valid_share: float = 0.5
) -> ColdItemSplit:
    """Hold `fraction` of the interacted items out of training (see the module docstring)."""
    if not 0 < fraction < 1:
        raise ValueError("cold_item_split: fraction must be in (0, 1)")
    rng = np.random.default_rng(seed)
    items = np.flatnonzero(data.item_popularity() > 0)
    chosen = rng.choice(items, max(2, int(round(fraction * len(items)))), replace=False)
    n_valid = int(round(valid_share * len(chosen)))
    cold_valid, cold_test = np.sort(chosen[:n_valid]), np.sort(chosen[n_valid:])
    cold_mask = np.zeros(data.n_items, dtype=bool)
    cold_mask[chosen] = True
    train = data.subset(~cold_mask[data.item_idx])
    vmask = np.zeros(data.n_items, dtype=bool)
    vmask[cold_valid] = True
    tmask = np.zeros(data.n_items, dtype=bool)
    tmask[cold_test] = True
    return ColdItemSplit(
        train,
        _cold_evalset(data, vmask, cold_mask),
        _cold_evalset(data, tmask, cold_mask),
        cold_valid,
        cold_test,
    )


# ----------------------------------------------------------------------------- cold users
@dataclass(eq=False)
class ColdUserSplit:
    """Warm users under leave-one-out, and held-out users at each history length n."""

    train: InteractionData
    warm_valid: EvalSet
    warm_test: EvalSet
    cold: dict[int, EvalSet]
    cold_users: np.ndarray
    cold_last: EvalSet
    """The same held-out users with everything but their last event as history, target the
    last event: separates "few events" from "early in a sequence" (still no retraining)."""


def cold_user_split(
    data: InteractionData, fraction: float = 0.2, ns: Sequence[int] = COLD_USER_NS, seed: int = 0
) -> ColdUserSplit:
    """Hold `fraction` of the users with more than max(ns) events out of training."""
    if not 0 < fraction < 1:
        raise ValueError("cold_user_split: fraction must be in (0, 1)")
    seqs = data.sequences()
    need = max(ns) + 1
    eligible = np.flatnonzero(np.array([len(s) >= max(need, 3) for s in seqs]))
    if len(eligible) < 2:
        raise ValueError(f"cold_user_split: fewer than 2 users with {max(need, 3)}+ events")
    rng = np.random.default_rng(seed)
    cold_users = np.sort(
        rng.choice(eligible, max(1, int(round(fraction * len(eligible)))), replace=False)
    )
    is_cold = np.zeros(data.n_users, dtype=bool)
    is_cold[cold_users] = True
    warm = leave_one_out(data.subset(~is_cold[data.user_idx]))
    cold = {
        n: EvalSet(
            cold_users,
            [seqs[u][:n] for u in cold_users],
            _targets([seqs[u][n : n + 1] for u in cold_users], data.n_items),
        )
        for n in ns
    }
    last = EvalSet(
        cold_users,
        [seqs[u][:-1] for u in cold_users],
        _targets([seqs[u][-1:] for u in cold_users], data.n_items),
    )
    return ColdUserSplit(warm.train, warm.valid, warm.test, cold, cold_users, last)


# ----------------------------------------------------------------------------- metrics
def rank_metrics(
    ranks: list[np.ndarray], targets: sp.csr_matrix, ks: Sequence[int] = KS
) -> dict[str, float]:
    """HR@k and NDCG@k (means over rows) from target ranks.

    `target_ranks` gives each target its position in the ranked list (other targets above
    it included), so NDCG stays <= 1 with several targets.
    """
    n_targets = np.diff(targets.indptr)
    out: dict[str, float] = {}
    for k in ks:
        ndcg, hr = ndcg_hr_at_k(ranks, n_targets, k)
        out[f"HR@{k}"], out[f"NDCG@{k}"] = hr, ndcg
    out["users"] = float(len(ranks))
    return out


def evaluate_scores(
    score_fn: Any,
    evalset: EvalSet,
    candidates: np.ndarray | None = None,
    ks: Sequence[int] = KS,
    batch_size: int = 1024,
) -> dict[str, float]:
    """HR/NDCG@k of `score_fn(histories, rows) -> (B, n_items)` on `evalset`.

    History items are excluded; with `candidates`, only those items are ranked (the targets
    must be among them). `rows` are the positions of the batch in `evalset`, so scorers can
    look up per-user information (attributes).
    """
    ranks: list[np.ndarray] = []
    for start in range(0, len(evalset), batch_size):
        stop = min(start + batch_size, len(evalset))
        hist = evalset.histories[start:stop]
        scores = np.array(score_fn(hist, np.arange(start, stop)), dtype=np.float32, copy=True)
        if candidates is not None:
            keep = np.zeros(scores.shape[1], dtype=bool)
            keep[candidates] = True
            scores[:, ~keep] = -np.inf
        ranks.extend(target_ranks(scores, hist, evalset.targets[start:stop]))
    return rank_metrics(ranks, evalset.targets, ks)


def evaluate_among(
    model: Any,
    evalset: EvalSet,
    candidates: np.ndarray | None = None,
    ks: Sequence[int] = KS,
    batch_size: int = 1024,
) -> dict[str, float]:
    """`evaluate_scores` for a fitted Recommender (anything with `score(histories)`)."""
    return evaluate_scores(lambda h, rows: model.score(h), evalset, candidates, ks, batch_size)


def fixed_scorer(scores: np.ndarray) -> Any:
    """A scorer that gives every history the same item scores (popularity baselines)."""
    s = np.asarray(scores, dtype=np.float32)
    return lambda hist, rows: np.tile(s, (len(hist), 1))


def random_scorer(n_items: int, seed: int = 0) -> Any:
    """Uniformly random scores (the random baseline)."""
    rng = np.random.default_rng(seed)
    return lambda hist, rows: rng.random((len(hist), n_items), dtype=np.float32)


def neighbour_popularity(
    content: np.ndarray, popularity: np.ndarray, cold: np.ndarray, k: int = 20
) -> np.ndarray:
    """Predicted popularity of cold items: mean training popularity of their k nearest warm
    items in content space (a non-personalised content baseline). Shape (n_items,); warm
    items keep their own popularity."""
    out = np.asarray(popularity, dtype=np.float64).copy()
    warm = np.flatnonzero(popularity > 0)
    sims = content[cold] @ content[warm].T
    k = min(k, len(warm))
    nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    out[cold] = popularity[warm][nn].mean(axis=1)
    return out


# ----------------------------------------------------------------------------- registry
def _fp(data: InteractionData, what: str) -> str:
    return data.fingerprint(what)


def cold_items(data: InteractionData, cfg: SplitConfig) -> Split:
    """Protocol `cold-items` for the harness: `cfg.test_fraction` of the items (at least 10%)
    held out; the harness ranks the held-out targets among all items (full ranking)."""
    s = cold_item_split(data, max(cfg.test_fraction, 0.1), cfg.seed)
    return Split(s.train, s.valid, s.test, "cold-items", _fp(data, f"cold-items:{cfg.seed}"))


def _cold_users(data: InteractionData, cfg: SplitConfig, ns: Sequence[int]) -> Split:
    s = cold_user_split(data, 0.2, COLD_USER_NS, cfg.seed)
    rows = [s.cold[n] for n in ns]
    test = EvalSet(
        np.concatenate([r.users for r in rows]),
        [h for r in rows for h in r.histories],
        sp.vstack([r.targets for r in rows]).tocsr(),
    )
    name = "cold-users" + ("" if len(ns) > 1 else f"-{ns[0]}")
    return Split(s.train, s.warm_valid, test, name, _fp(data, f"{name}:{cfg.seed}"))


def cold_users(data: InteractionData, cfg: SplitConfig) -> Split:
    """Protocol `cold-users`: 20% of users held out; each evaluated with their first 0, 1, 3
    and 5 events as history (one test row per user and n; full ranking)."""
    return _cold_users(data, cfg, COLD_USER_NS)


def cold_users_0(data: InteractionData, cfg: SplitConfig) -> Split:
    return _cold_users(data, cfg, (0,))


def cold_users_1(data: InteractionData, cfg: SplitConfig) -> Split:
    return _cold_users(data, cfg, (1,))


def cold_users_3(data: InteractionData, cfg: SplitConfig) -> Split:
    return _cold_users(data, cfg, (3,))


def cold_users_5(data: InteractionData, cfg: SplitConfig) -> Split:
    return _cold_users(data, cfg, (5,))
