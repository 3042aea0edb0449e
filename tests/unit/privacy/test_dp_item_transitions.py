"""The attribute -> next-item release (`PrivateSeq(item_transition_init=...)`): values live on
the catalog's public (item, attribute) support, one user moves them by L2 <= 1 (the Gaussian
mechanism's sensitivity), the release is composed into the reported epsilon, the prior is
part of the score (it ranks the item a brand's shoppers go on to first) and of the saved
model, and DP-SGD still clips each user's whole gradient, its gate's included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.private_seq_module import PrivateSeqModule
from shoprec.models.torch_base import tag_csr
from shoprec.privacy.dp import DPLossModule, epsilon_spent, fit_private
from shoprec.privacy.federated import init_model
from tests.unit.privacy.helpers import attribute_model

torch.set_num_threads(1)


def favourite_data(n_users: int = 150, n_brands: int = 4, per_brand: int = 6, length: int = 6):
    """Each user shops one brand; after any item of brand b the next item is b's item 0
    ("the favourite") half of the time, a random item of b otherwise."""
    rng = np.random.default_rng(0)
    items = {f"b{b}i{i}": [f"brand{b}", "all"] for b in range(n_brands) for i in range(per_brand)}
    seqs = {}
    for u in range(n_users):
        b = int(rng.integers(n_brands))
        picks = [
            0 if rng.random() < 0.5 else int(rng.integers(1, per_brand)) for _ in range(length)
        ]
        seqs[f"u{u}"] = [f"b{b}i{i}" for i in picks]
    return InteractionData.from_sequences(seqs, items)


def _model(**over) -> PrivateSeq:
    return attribute_model(**{"item_transition_init": 5.0, **over})


def _dense_contribution(model: PrivateSeq, seq: np.ndarray) -> np.ndarray:
    """(n_items, n_tags): the user's normalised transitions into each item, on its attributes."""
    attrs = model._attribute_matrix().toarray()
    raw = np.zeros(attrs.shape)
    for prev, nxt in zip(seq[:-1], seq[1:], strict=True):
        raw[nxt] += attrs[prev] * (attrs[nxt] > 0)
    return raw / max(1.0, np.linalg.norm(raw))


def test_values_are_each_users_normalised_transitions_on_the_public_support():
    data = favourite_data(n_users=12)
    model = init_model(_model(), data)
    rows, cols = model.module_.item_transition_index.numpy()
    attrs = model._attribute_matrix().toarray()
    assert np.array_equal(
        np.sort(np.flatnonzero(attrs.ravel())), np.sort(rows * attrs.shape[1] + cols)
    )
    full = model.item_transition_counts(data)
    want = sum(_dense_contribution(model, s) for s in data.sequences())
    np.testing.assert_allclose(full, want[rows, cols], atol=1e-12)
    for u, seq in enumerate(data.sequences()):
        diff = full - model.item_transition_counts(data.subset(data.user_idx != u))
        assert np.linalg.norm(diff) <= 1.0 + 1e-9
        np.testing.assert_allclose(diff, _dense_contribution(model, seq)[rows, cols], atol=1e-12)


def test_release_is_composed_into_the_reported_epsilon():
    split = leave_one_out(favourite_data())
    model = _model(item_transition_share=0.25)
    report = fit_private(model, split.train, 4.0)
    assert report.item_transition_noise_multiplier > 0
    alone = epsilon_spent(0.0, 1.0, 0, report.delta, report.item_transition_noise_multiplier)
    assert alone == pytest.approx(1.0, rel=0.01)
    releases = (report.popularity_noise_multiplier, report.item_transition_noise_multiplier)
    total = epsilon_spent(
        report.noise_multiplier, report.sample_rate, report.steps, report.delta, releases
    )
    assert report.epsilon == pytest.approx(total) and 3.9 < report.epsilon <= 4.0 + 1e-6
    assert model.train_log_["privacy"]["item_transition_noise_multiplier"] > 0
    exact = init_model(_model(), split.train)
    exact.init_releases(split.train, 0.0, 0.0, 1, 0.0)
    assert not np.allclose(model.module_.item_transition.numpy(), exact.module_.item_transition)
    with pytest.raises(ValueError, match="room"):
        fit_private(_model(popularity_share=0.9, item_transition_share=0.9), split.train, 4.0)


def test_prior_is_in_the_score_ranks_the_favourite_and_is_saved(tmp_path):
    split = leave_one_out(favourite_data())
    model = _model()
    fit_private(model, split.train, float("inf"))
    module = model.module_
    names = split.train.items.to_list()
    seqs = torch.tensor([[names.index("b1i3"), names.index("b1i2")]])
    with torch.no_grad():
        module.out_attr.weight.zero_()
        profile = module._profile(seqs)
        rows, cols = module.item_transition_index
        to_items = torch.zeros(module.n_items, module.n_tags)
        to_items[rows, cols] = module.item_transition
        part = (to_items @ module.item_trans_gate(profile).T).T
        query = module.gate(profile)
        want = (module.attr_matrix.to_dense() @ query.T).T + module.item_bias.weight[:, 0] + part
        torch.testing.assert_close(module(seqs), want, rtol=1e-5, atol=1e-5)
        assert int(part[0].argmax()) == names.index("b1i0")
    model.save(tmp_path / "m")
    loaded = PrivateSeq.load(tmp_path / "m")
    torch.testing.assert_close(loaded.module_.item_transition, module.item_transition)
    torch.testing.assert_close(loaded.module_(seqs), module(seqs))


def test_private_gradient_clips_each_users_whole_gradient_gate_included():
    data = favourite_data(n_users=20)
    torch.manual_seed(0)
    module = PrivateSeqModule(
        data.n_items, 6, 8, 2, 0.0, attrs=tag_csr(data), prior_last=3, item_transition_init=2.0
    )
    with torch.no_grad():
        module.item_transition.copy_(torch.rand(len(module.item_transition)))
    g = torch.Generator().manual_seed(1)
    items = torch.randint(0, data.n_items, (5, 6), generator=g)
    targets = torch.randint(0, data.n_items, (5,), generator=g)
    clip = 0.05
    params = [p for p in module.parameters() if p.requires_grad]
    want = [torch.zeros_like(p) for p in params]
    for u in range(5):
        loss = F.cross_entropy(module(items[u][None]), targets[u][None])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        gs = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, gs, strict=True)]
        assert (
            float(gs[[id(p) for p in params].index(id(module.item_trans_gate.weight))].abs().sum())
            > 0
        )
        norm = torch.sqrt(sum((gr**2).sum() for gr in gs))
        for w, gr in zip(want, gs, strict=True):
            w += gr * min(1.0, clip / (float(norm) + 1e-6)) / 5
    dp = DPLossModule(module, noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=5)
    got, _ = dp.private_gradient({"items": items, "targets": targets})
    for w, gr in zip(want, got, strict=True):
        torch.testing.assert_close(gr, w, atol=1e-6, rtol=1e-4)
    dp.close()
