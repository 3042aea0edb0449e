"""Several training cuts per user (`PrivateSeq(cuts_per_user=m)`): each user is still one DP
record. The private gradient is the sum over users of the clipped gradient of the user's
*mean* loss over their cuts, a batch holds distinct cuts of each user's own sequence, and the
accountant's epsilon does not depend on m."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.private_seq_module import PrivateSeqModule, per_user_loss
from shoprec.models.torch_base import tag_csr
from shoprec.privacy.dp import DPLossModule, fit_private
from tests.unit.models.test_private_seq_attributes import brand_data

torch.set_num_threads(1)


def test_private_gradient_clips_each_users_mean_loss_over_their_cuts():
    data = brand_data(n_users=20)
    torch.manual_seed(0)
    module = PrivateSeqModule(
        data.n_items,
        6,
        8,
        2,
        0.0,
        attrs=tag_csr(data),
        id_dim=3,
        prior_last=3,
        transition_init=2.0,
    )
    with torch.no_grad():
        module.transition.copy_(torch.rand(module.n_tags, module.n_tags))
    g = torch.Generator().manual_seed(1)
    users, m = 4, 3
    items = torch.randint(0, data.n_items, (users, m, 6), generator=g)
    items[0, 1, :4] = data.n_items  # a short, padded history
    targets = torch.randint(0, data.n_items, (users, m), generator=g)
    targets[2, 1:] = -1  # a user with one cut only
    items[2, 1:] = data.n_items
    clip = 0.05
    params = [p for p in module.parameters() if p.requires_grad]
    per_user = []
    for u in range(users):
        cuts = [c for c in range(m) if targets[u, c] >= 0]
        loss = sum(
            F.cross_entropy(module(items[u, c][None]), targets[u, c][None]) for c in cuts
        ) / len(cuts)
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        gs = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, gs, strict=True)]
        norm = torch.sqrt(sum((gr**2).sum() for gr in gs))
        per_user.append([gr * min(1.0, clip / (float(norm) + 1e-6)) for gr in gs])
    want = [sum(u[j] for u in per_user) / users for j in range(len(params))]
    dp = DPLossModule(module, noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=users)
    got, _ = dp.private_gradient({"items": items, "targets": targets})
    for w, gr in zip(want, got, strict=True):
        torch.testing.assert_close(gr, w, atol=1e-6, rtol=1e-4)
    assert dp.last_clipped_fraction == 1.0
    dp.close()


def test_per_user_loss_averages_only_real_cuts():
    scores = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 3], [4, -1, -1]])
    got = per_user_loss(scores, targets)
    first = F.cross_entropy(scores[0], targets[0], reduction="mean")
    second = F.cross_entropy(scores[1, :1], targets[1, :1], reduction="mean")
    torch.testing.assert_close(got, torch.stack([first, second]))


def test_a_batch_holds_distinct_cuts_of_each_users_own_sequence():
    model = PrivateSeq(max_len=4, cuts_per_user=3)
    model.n_items_ = pad = 50
    model._examples = [np.array([1, 2, 3, 4, 5, 6]), np.array([7, 8])]
    batch = model._batch(np.random.default_rng(0), np.array([0, 1]))
    assert batch["items"].shape == (2, 3, 4) and batch["targets"].shape == (2, 3)
    first = batch["targets"][0].tolist()
    assert len(set(first)) == 3 and set(first) <= {2, 3, 4, 5, 6}
    for c, target in enumerate(first):  # each history is the sequence up to its target
        want = [x for x in range(max(1, target - 4), target)]
        assert [x for x in batch["items"][0, c].tolist() if x != pad] == want
    assert batch["targets"][1].tolist() == [8, -1, -1]  # two items: one cut, two pads
    assert batch["items"][1, 0].tolist()[-1] == 7 and (batch["items"][1, 1:] == pad).all()


def test_epsilon_does_not_depend_on_the_cuts_and_the_model_still_scores():
    split = leave_one_out(brand_data())
    reports = []
    for m in (1, 3):
        model = PrivateSeq(
            item_repr="attributes",
            dim=8,
            heads=2,
            max_len=6,
            epochs=2,
            batch_size=40,
            lr=1e-2,
            cuts_per_user=m,
        )
        reports.append(fit_private(model, split.train, 4.0))
        scores = model.score(split.test.histories[:3])
        assert scores.shape == (3, split.train.n_items) and np.isfinite(scores).all()
    assert reports[0].epsilon == pytest.approx(reports[1].epsilon)
    assert reports[1].steps == 2 * math.ceil(reports[1].n_users / 40)
