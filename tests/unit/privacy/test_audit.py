"""Membership inference: the attack's metrics on known inputs, the per-user loss, and a
memorising model that leaks while a DP model leaks less."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shoprec.data.interactions import InteractionData
from shoprec.models.private_seq import PrivateSeq
from shoprec.privacy.audit import attack_metrics, audit_membership, per_user_loss, split_members

torch.set_num_threads(1)


class Fixed:
    """Scores: uniform, except `boost` on the item after the last one (mod n)."""

    def __init__(self, n_items: int, boost: float):
        self.n_items, self.boost = n_items, boost

    def score(self, histories):
        out = np.zeros((len(histories), self.n_items), np.float32)
        for r, h in enumerate(histories):
            out[r, (int(h[-1]) + 1) % self.n_items] = self.boost
        return out


def test_per_user_loss_is_the_mean_next_item_cross_entropy():
    uniform = per_user_loss(Fixed(8, 0.0), [np.array([0, 1, 2]), np.array([3]), np.array([5, 1])])
    assert uniform[0] == pytest.approx(math.log(8))
    assert np.isnan(uniform[1])
    sharp = per_user_loss(Fixed(8, 20.0), [np.array([0, 1, 2]), np.array([5, 1])])
    assert sharp[0] < 1e-6  # 0->1->2 follows the rule exactly
    assert sharp[1] == pytest.approx(math.log(math.exp(20.0) + 7), rel=1e-6)


def test_attack_metrics_on_known_separations():
    perfect = attack_metrics(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0]))
    assert perfect["auc"] == 1.0 and perfect["advantage"] == 1.0
    rng = np.random.default_rng(0)
    same = attack_metrics(rng.normal(size=4000), rng.normal(size=4000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["advantage"] < 0.06


def test_split_members_is_disjoint_and_balanced():
    data = InteractionData.from_sequences({f"u{u}": ["a", "b", "c"] for u in range(11)})
    m, n = split_members(data, seed=1)
    assert len(m) == len(n) == 5 and not set(m) & set(n)


@pytest.mark.slow
def test_a_memorising_model_leaks_and_dp_leaks_less():
    # random sequences: nothing generalises, so low loss can only come from memorising
    rng = np.random.default_rng(0)
    data = InteractionData.from_sequences(
        {f"u{u}": [str(i) for i in rng.integers(0, 40, 6)] for u in range(160)}
    )

    def make():
        return PrivateSeq(
            dim=32, heads=2, dropout=0.0, max_len=6, epochs=60, batch_size=20, lr=1e-2
        )

    leaky = audit_membership(make, data)
    assert leaky["auc"] > 0.75 and leaky["privacy"]["epsilon"] == "inf"
    private = audit_membership(make, data, epsilon=1.0)
    assert private["privacy"]["epsilon"] <= 1.0 + 1e-6
    assert private["auc"] < leaky["auc"] - 0.15
