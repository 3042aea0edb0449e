"""DP-SGD on the catalog-attribute PrivateSeq: the private gradient is still the sum of
clipped per-user gradients (attribute embeddings, the functorch-handled prior gate, the item
bias and the low-rank id correction included), the reported epsilon is the accountant's for
the steps taken, and the CLI stores it in the artifact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.private_seq_module import PrivateSeqModule
from shoprec.models.torch_base import tag_csr
from shoprec.privacy.dp import DPLossModule, default_delta, epsilon_spent, fit_private
from tests.unit.models.test_private_seq_attributes import brand_data
from tests.unit.privacy.helpers import write_seq_files

torch.set_num_threads(1)


def test_private_gradient_is_the_sum_of_clipped_per_user_gradients():
    data = brand_data(n_users=20)
    torch.manual_seed(0)
    module = PrivateSeqModule(
        data.n_items, 6, 8, 2, 0.0, attrs=tag_csr(data), id_dim=3, prior_last=3
    )
    g = torch.Generator().manual_seed(1)
    items = torch.randint(0, data.n_items, (5, 6), generator=g)
    items[0, :4] = data.n_items  # a short, padded history
    batch = {"items": items, "targets": torch.randint(0, data.n_items, (5,), generator=g)}
    clip = 0.05
    params = [p for p in module.parameters() if p.requires_grad]
    per_user = []
    for i in range(5):
        loss = F.cross_entropy(module(items[i : i + 1]), batch["targets"][i : i + 1])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        gs = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, gs, strict=True)]
        norm = torch.sqrt(sum((gr**2).sum() for gr in gs))
        per_user.append([gr * min(1.0, clip / (float(norm) + 1e-6)) for gr in gs])
    want = [sum(u[j] for u in per_user) / 5.0 for j in range(len(params))]
    dp = DPLossModule(module, noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=5)
    got, _ = dp.private_gradient(batch)
    for w, gr in zip(want, got, strict=True):
        torch.testing.assert_close(gr, w, atol=1e-6, rtol=1e-4)
    assert dp.last_clipped_fraction == 1.0
    dp.close()


def test_reported_epsilon_is_the_accountants_for_the_steps_taken(tmp_path):
    split = leave_one_out(brand_data())
    model = PrivateSeq(
        item_repr="attributes", dim=8, heads=2, max_len=6, epochs=2, batch_size=40, lr=1e-2
    )
    report = fit_private(model, split.train, 8.0)
    n = report.n_users
    assert report.sample_rate == pytest.approx(40 / n)
    assert report.steps == 2 * math.ceil(n / 40)
    assert report.delta == pytest.approx(default_delta(n))
    again = epsilon_spent(report.noise_multiplier, report.sample_rate, report.steps, report.delta)
    assert report.epsilon == pytest.approx(again) and 7.0 < report.epsilon <= 8.0 + 1e-6
    assert model.train_log_["privacy"]["epsilon"] == report.epsilon
    model.save(tmp_path / "m")
    loaded = PrivateSeq.load(tmp_path / "m")
    assert loaded.train_log_["privacy"]["noise_multiplier"] == report.noise_multiplier
    scores = loaded.score(split.test.histories[:4])
    np.testing.assert_allclose(scores, model.score(split.test.histories[:4]), rtol=1e-5)


def test_train_private_cli_with_item_attributes_stores_epsilon(tmp_path):
    """`shoprec train-private` with catalog attributes and the popularity release: the
    artifact's manifest holds the (composed) epsilon and both noise multipliers."""
    from shoprec.cli import app
    from shoprec.storage.artifacts import read_manifest

    seqs, attrs = write_seq_files(brand_data(n_users=60), tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "train-private",
            "--data",
            str(seqs),
            "--format",
            "seq",
            "--item-attributes",
            str(attrs),
            "--item-repr",
            "attributes",
            "--popularity-init",
            "0.3",
            "--out",
            str(tmp_path / "art"),
            "--epsilon",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "20",
            "--dim",
            "8",
            "--max-len",
            "6",
            "--cuts-per-user",
            "2",
            "--item-transition-init",
            "5",
            "--fixed-item-bias",
            "--accountant",
            "prv",
        ],
    )
    assert res.exit_code == 0, res.output
    _, manifest = read_manifest(tmp_path / "art")
    assert manifest["models"]["private_seq"]["cuts_per_user"] == 2
    assert manifest["privacy"]["unit"] == "user"
    assert 0 < manifest["privacy"]["epsilon"] <= 4.0 + 1e-6
    assert manifest["models"]["private_seq"]["item_repr"] == "attributes"
    assert manifest["privacy"]["popularity_noise_multiplier"] > 0
    # the transition release is on by default with the attribute design
    assert manifest["models"]["private_seq"]["transition_init"] > 0
    assert manifest["privacy"]["transition_noise_multiplier"] > 0
    assert manifest["models"]["private_seq"]["item_transition_init"] == 5
    assert manifest["privacy"]["item_transition_noise_multiplier"] > 0
    assert manifest["models"]["private_seq"]["learn_item_bias"] is False
    assert manifest["privacy"]["accountant"] == "prv"


def test_popularity_counts_weigh_each_user_with_l2_norm_one():
    data = brand_data(n_users=3)
    model = PrivateSeq(item_repr="attributes", popularity_init=0.5)
    counts = model.popularity_counts(data)
    want = np.zeros(data.n_items)
    for seq in data.sequences():
        items = np.unique(seq)
        want[items] += 1 / np.sqrt(len(items))
        assert np.linalg.norm(np.full(len(items), 1 / np.sqrt(len(items)))) == pytest.approx(1)
    np.testing.assert_allclose(counts, want)


def test_popularity_release_is_composed_into_the_reported_epsilon():
    split = leave_one_out(brand_data())
    model = PrivateSeq(
        item_repr="attributes",
        popularity_init=0.5,
        popularity_share=0.25,
        dim=8,
        heads=2,
        max_len=6,
        epochs=1,
        batch_size=40,
    )
    report = fit_private(model, split.train, 4.0)
    assert report.popularity_noise_multiplier > 0
    # the release alone spends (about) its share; composed with DP-SGD, the total is the target
    alone = epsilon_spent(report.popularity_noise_multiplier, 1.0, 1, report.delta)
    assert alone == pytest.approx(1.0, rel=0.01)
    total = epsilon_spent(
        report.noise_multiplier,
        report.sample_rate,
        report.steps,
        report.delta,
        report.popularity_noise_multiplier,
    )
    assert report.epsilon == pytest.approx(total) and 3.9 < report.epsilon <= 4.0 + 1e-6
    without = epsilon_spent(report.noise_multiplier, report.sample_rate, report.steps, report.delta)
    assert without < report.epsilon
    # non-private reference: the exact counts, no noise
    plain = PrivateSeq(item_repr="attributes", popularity_init=0.5, dim=8, heads=2, max_len=6)
    plain.spec_, plain.n_items_ = plain._spec(split.train), split.train.n_items
    plain.module_ = plain._build(plain.spec_)
    plain.init_releases(split.train, 0.0, 0.0, 0)  # no transitions: the bias alone
    want = 0.5 * np.log1p(plain.popularity_counts(split.train))
    np.testing.assert_allclose(plain.module_.item_bias.weight[:, 0].detach(), want, rtol=1e-5)
