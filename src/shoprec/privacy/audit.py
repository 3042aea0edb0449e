"""Membership inference: how much a trained model tells about who was in its training data.

The attack is the loss-threshold attack (Yeom et al., CSF 2018): a user whose sequence the
model predicts unusually well (low next-item cross-entropy) is guessed to be a member. With
members and held-out non-members drawn from the same population, the attack's ROC AUC (0.5 =
no leak) and its advantage (max over thresholds of TPR - FPR, which bounds from below the
``e^epsilon - 1 + delta`` slack of a DP guarantee) measure the leak. DP training should push
both towards 0.5 and 0.

`audit_membership` runs the whole experiment: split users into members and non-members, train
one model on the members only (with or without DP), attack it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from shoprec.data.interactions import InteractionData


def per_user_loss(
    model: Any, sequences: Sequence[np.ndarray], batch_size: int = 1024
) -> np.ndarray:
    """Mean next-item cross-entropy of each user's sequence under `model`.

    Every position t >= 1 is predicted from the items before it, from ``model.score`` (read as
    logits; log-softmax over all items). Users with fewer than two items get NaN.

    Returns
    -------
    np.ndarray, shape (n_users,)
    """
    rows_hist: list[np.ndarray] = []
    rows_target: list[int] = []
    owner: list[int] = []
    for u, seq in enumerate(sequences):
        for t in range(1, len(seq)):
            rows_hist.append(seq[:t])
            rows_target.append(int(seq[t]))
            owner.append(u)
    losses = np.full(len(sequences), np.nan)
    if not owner:
        return losses
    ce = np.empty(len(owner))
    for start in range(0, len(owner), batch_size):
        stop = min(start + batch_size, len(owner))
        scores = torch.as_tensor(model.score(rows_hist[start:stop]), dtype=torch.float32)
        logp = torch.log_softmax(scores, dim=1)
        tgt = torch.as_tensor(rows_target[start:stop])
        ce[start:stop] = (-logp[torch.arange(stop - start), tgt]).numpy()
    owner_a = np.asarray(owner)
    sums = np.bincount(owner_a, weights=ce, minlength=len(sequences))
    counts = np.bincount(owner_a, minlength=len(sequences))
    ok = counts > 0
    losses[ok] = sums[ok] / counts[ok]
    return losses


def attack_metrics(member_loss: np.ndarray, non_member_loss: np.ndarray) -> dict[str, float]:
    """ROC AUC and advantage of the attack "member when loss < threshold"."""
    from sklearn.metrics import roc_auc_score, roc_curve

    m = member_loss[np.isfinite(member_loss)]
    n = non_member_loss[np.isfinite(non_member_loss)]
    if len(m) == 0 or len(n) == 0:
        raise ValueError("attack_metrics: need members and non-members with a finite loss")
    y = np.concatenate([np.ones(len(m)), np.zeros(len(n))])
    s = -np.concatenate([m, n])  # lower loss -> more likely a member
    fpr, tpr, _ = roc_curve(y, s)
    return {
        "auc": float(roc_auc_score(y, s)),
        "advantage": float(np.max(tpr - fpr)),
        "members": int(len(m)),
        "non_members": int(len(n)),
        "member_loss_median": float(np.median(m)),
        "non_member_loss_median": float(np.median(n)),
    }


def split_members(
    data: InteractionData, n_users: int | None = None, seed: int = 0, min_events: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Random disjoint halves of the users with at least `min_events` events: (members,
    non-members), each of at most ``n_users // 2`` users."""
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    users = np.random.default_rng(seed).permutation(np.flatnonzero(counts >= min_events))
    if n_users is not None:
        users = users[:n_users]
    half = len(users) // 2
    if half == 0:
        raise ValueError("split_members: too few users")
    return np.sort(users[:half]), np.sort(users[half : 2 * half])


def audit_membership(
    make_model: Callable[[], Any],
    data: InteractionData,
    epsilon: float = math.inf,
    n_users: int | None = None,
    seed: int = 0,
    max_grad_norm: float = 1.0,
    accountant: str = "rdp",
) -> dict[str, Any]:
    """Train on half the users (members), attack members against the other half.

    `make_model` returns an unfitted `PrivateSeq`; ``epsilon = inf`` trains without DP.
    Returns the attack metrics and the privacy spent.
    """
    from shoprec.privacy.dp import fit_private

    members, non_members = split_members(data, n_users, seed)
    train = data.subset(np.isin(data.user_idx, members))
    model = make_model()
    report = fit_private(model, train, epsilon, max_grad_norm=max_grad_norm, accountant=accountant)
    seqs = data.sequences()
    result = attack_metrics(
        per_user_loss(model, [seqs[u] for u in members]),
        per_user_loss(model, [seqs[u] for u in non_members]),
    )
    result["attack"] = "loss threshold (Yeom et al. 2018)"
    result["privacy"] = report.as_dict()
    return result
