"""DP-SGD: per-user clipping is exact, the noise has the calibrated scale, the accountant's
epsilon is respected, and a private model still learns a known pattern."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.private_seq_module import PrivateSeqModule
from shoprec.models.ranking import evaluate_ndcg
from shoprec.privacy.dp import DPLossModule, epsilon_spent, fit_private

torch.set_num_threads(1)


def _batch(n_items: int, rows: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(0, n_items, (rows, 6), generator=g)
    items[0, :3] = n_items  # a padded (short) history
    return {"items": items, "targets": torch.randint(0, n_items, (rows,), generator=g)}


def test_private_gradient_is_the_sum_of_clipped_per_user_gradients():
    torch.manual_seed(0)
    module = PrivateSeqModule(n_items=9, max_len=6, dim=8, heads=2, dropout=0.0)
    batch = _batch(9, 5)
    clip = 0.05  # small enough that every user is clipped
    expected = []
    params = [p for p in module.parameters() if p.requires_grad]
    for i in range(5):
        loss = F.cross_entropy(module(batch["items"][i : i + 1]), batch["targets"][i : i + 1])
        gs = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum((g**2).sum() for g in gs))
        expected.append([g * min(1.0, clip / (float(norm) + 1e-6)) for g in gs])
    want = [sum(e[j] for e in expected) / 5.0 for j in range(len(params))]
    dp = DPLossModule(module, noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=5)
    got, _ = dp.private_gradient(batch)
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-4)
    assert dp.last_clipped_fraction == 1.0
    dp.close()


def test_noise_has_the_calibrated_standard_deviation():
    module = PrivateSeqModule(n_items=50, max_len=6, dim=16, heads=2, dropout=0.0)
    dp = DPLossModule(module, noise_multiplier=2.0, max_grad_norm=0.5, expected_batch_size=10)
    empty = {
        "items": torch.zeros((0, 6), dtype=torch.long),
        "targets": torch.zeros(0, dtype=torch.long),
    }
    grads, loss = dp.private_gradient(empty)  # no users sampled: only noise
    flat = torch.cat([g.flatten() for g in grads])
    assert loss == 0.0
    assert float(flat.std()) == pytest.approx(2.0 * 0.5 / 10, rel=0.05)
    dp.close()
    # the surrogate loss's gradient is the private gradient
    dp2 = DPLossModule(module, 0.0, 1.0, 4)
    batch = _batch(50, 4)
    want, _ = dp2.private_gradient(batch)
    surrogate = dp2.loss(batch)
    surrogate.backward()
    for p, w in zip([p for p in module.parameters() if p.requires_grad], want, strict=True):
        torch.testing.assert_close(p.grad, w)
    dp2.close()


def test_epsilon_grows_with_steps_and_shrinks_with_noise():
    e1 = epsilon_spent(1.0, 0.01, 100, 1e-5)
    assert e1 < epsilon_spent(1.0, 0.01, 1000, 1e-5)
    assert epsilon_spent(2.0, 0.01, 100, 1e-5) < e1
    assert math.isinf(epsilon_spent(0.0, 0.01, 10, 1e-5))


def _cyclic(n_users: int = 240, n_items: int = 12, length: int = 7) -> InteractionData:
    """Item i is always followed by item i+1 (mod n): the next item is known exactly."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, n_items, n_users)
    return InteractionData.from_sequences(
        {f"u{u}": [str((s + j) % n_items) for j in range(length)] for u, s in enumerate(starts)}
    )


def test_poisson_batches_sample_each_user_with_rate_q():
    m = PrivateSeq(dim=8, heads=1, batch_size=24, poisson=True)
    data = _cyclic()
    m.spec_, m.n_items_ = m._spec(data), data.n_items
    m._prepare(data)
    sizes = [len(b["targets"]) for b in m.train_batches(np.random.default_rng(0), 24)]
    assert len(sizes) == 10  # ceil(240 / 24) steps per epoch
    assert len(set(sizes)) > 1 and abs(np.mean(sizes) - 24) < 6


@pytest.mark.slow
def test_private_training_learns_the_pattern_and_respects_epsilon(tmp_path):
    split = leave_one_out(_cyclic())
    common = dict(dim=16, heads=2, dropout=0.0, max_len=8, epochs=25, batch_size=60, lr=2e-2)
    plain = PrivateSeq(**common)
    ref = fit_private(plain, split.train, math.inf)
    assert math.isinf(ref.epsilon)
    ndcg_plain = evaluate_ndcg(plain, split.test)
    assert ndcg_plain > 0.9
    private = PrivateSeq(**common)
    report = fit_private(private, split.train, 8.0, delta=1e-4)
    assert report.epsilon <= 8.0 + 1e-6 and report.noise_multiplier > 0.3
    assert report.unit == "user" and report.sample_rate == pytest.approx(60 / 240)
    ndcg_private = evaluate_ndcg(private, split.test)
    assert ndcg_private > 0.5  # a popularity ranking scores ~0.3 here
    assert private.train_log_["privacy"]["epsilon"] == report.epsilon
    private.save(tmp_path / "m")
    again = PrivateSeq.load(tmp_path / "m")
    assert again.train_log_["privacy"]["noise_multiplier"] == report.noise_multiplier
    np.testing.assert_allclose(
        again.score(split.test.histories[:3]), private.score(split.test.histories[:3]), rtol=1e-5
    )
