"""The attribute-transition release (`PrivateSeq(transition_init=...)`): one user moves the
raw counts by L2 <= 1 (the Gaussian mechanism's sensitivity), the release is composed with the
popularity release and DP-SGD into the reported epsilon, the non-private path uses the exact
counts, and the prior is part of the score and of the saved model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.privacy.dp import epsilon_spent, fit_private
from shoprec.privacy.federated import init_model
from tests.unit.models.test_private_seq_attributes import brand_data
from tests.unit.privacy.helpers import attribute_model

torch.set_num_threads(1)


def _model(**over) -> PrivateSeq:
    return attribute_model(**{"transition_init": 3.0, **over})


def test_one_user_moves_the_transition_counts_by_at_most_one():
    data = brand_data(n_users=12, length=6)
    model = init_model(_model(), data)
    full = model.transition_counts(data)
    attrs = model._attribute_matrix().toarray()
    for u, seq in enumerate(data.sequences()):
        without = model.transition_counts(data.subset(data.user_idx != u))
        diff = full - without
        raw = attrs[seq[:-1]].T @ attrs[seq[1:]]  # the user's unnormalised transitions
        assert np.linalg.norm(diff) <= 1.0 + 1e-9
        # five same-brand transitions: the raw norm is 5, so the user is scaled to exactly 1
        assert np.linalg.norm(raw) > 1.0
        np.testing.assert_allclose(diff, raw / np.linalg.norm(raw), atol=1e-12)


def test_short_users_are_not_scaled_up_and_single_items_add_nothing():
    data = brand_data(n_users=5, length=2)
    model = init_model(_model(), data)
    attrs = model._attribute_matrix().toarray()
    seqs = data.sequences()
    want = sum(
        attrs[s[:-1]].T @ attrs[s[1:]] / max(1.0, np.linalg.norm(attrs[s[:-1]].T @ attrs[s[1:]]))
        for s in seqs
    )
    np.testing.assert_allclose(model.transition_counts(data), want, atol=1e-12)
    one = brand_data(n_users=3, length=1)
    assert not model.transition_counts(one).any()


def test_transition_release_is_composed_into_the_reported_epsilon():
    split = leave_one_out(brand_data())
    model = _model(popularity_share=0.25, transition_share=0.25)
    report = fit_private(model, split.train, 4.0)
    assert report.transition_noise_multiplier > 0 and report.popularity_noise_multiplier > 0
    # each release alone spends its share; composed with DP-SGD the total is the target
    alone = epsilon_spent(0.0, 1.0, 0, report.delta, report.transition_noise_multiplier)
    assert alone == pytest.approx(1.0, rel=0.01)
    releases = (report.popularity_noise_multiplier, report.transition_noise_multiplier)
    total = epsilon_spent(
        report.noise_multiplier, report.sample_rate, report.steps, report.delta, releases
    )
    assert report.epsilon == pytest.approx(total) and 3.9 < report.epsilon <= 4.0 + 1e-6
    only_pop = epsilon_spent(
        report.noise_multiplier, report.sample_rate, report.steps, report.delta, releases[0]
    )
    assert only_pop < report.epsilon
    assert model.train_log_["privacy"]["transition_noise_multiplier"] == pytest.approx(
        report.transition_noise_multiplier
    )
    with pytest.raises(ValueError, match="room"):
        fit_private(_model(popularity_share=0.9, transition_share=0.9), split.train, 4.0)


def test_non_private_path_uses_the_exact_counts_and_noise_changes_them():
    split = leave_one_out(brand_data())
    model = _model()
    fit_private(model, split.train, float("inf"))
    exact = model.transition_prior(
        model.transition_counts(split.train), model.popularity_counts(split.train)
    )
    np.testing.assert_allclose(model.module_.transition.numpy(), exact, rtol=1e-5, atol=1e-7)
    fresh = init_model(_model(), split.train)
    fresh.init_releases(split.train, 0.0, 0.0, seed=7)  # noise-free release = exact counts
    np.testing.assert_allclose(fresh.module_.transition.numpy(), exact, rtol=1e-5, atol=1e-7)
    fresh.init_releases(split.train, 0.0, 1.0, seed=7)
    assert not np.allclose(fresh.module_.transition.numpy(), exact, rtol=1e-3)
    # the shared-loop fit (no DP) sets the same exact prior
    plain = _model()
    plain.fit(split.train)
    np.testing.assert_allclose(plain.module_.transition.numpy(), exact, rtol=1e-5, atol=1e-7)


def test_transition_prior_is_in_the_score_and_saved(tmp_path):
    split = leave_one_out(brand_data())
    model = _model()
    fit_private(model, split.train, float("inf"))
    module = model.module_
    seqs = torch.tensor([[2, 2, 2], [7, 8, 9]])
    with torch.no_grad():
        module.out_attr.weight.zero_()
        if module.id_dim:
            module.id_out.weight.zero_()
        profile = module._profile(seqs)
        query = module.gate(profile) + module.trans_gate(profile @ module.transition)
        want = (module.attr_matrix.to_dense() @ query.T).T + module.item_bias.weight[:, 0]
        torch.testing.assert_close(module(seqs), want, rtol=1e-5, atol=1e-5)
        # users stay within one brand: the transition part alone ranks the history's brand
        # first
        names = split.train.items.to_list()
        brand = names[2].split("i")[0]
        same = {i for i, name in enumerate(names) if name.startswith(brand + "i")}
        alone = (module.attr_matrix.to_dense() @ (profile[:1] @ module.transition).T).T
        assert set(torch.topk(alone[0], len(same)).indices.tolist()) == same
    model.save(tmp_path / "m")
    loaded = PrivateSeq.load(tmp_path / "m")
    torch.testing.assert_close(loaded.module_.transition, module.transition)


def test_transitions_without_the_popularity_prior_still_release_popularity():
    """The prior is normalised by the released popularity: it is released (and composed)
    even when the item bias does not use it."""
    split = leave_one_out(brand_data())
    model = _model(popularity_init=0.0)
    report = fit_private(model, split.train, 4.0)
    assert report.popularity_noise_multiplier > 0 and report.transition_noise_multiplier > 0
    assert float(model.module_.transition.abs().sum()) > 0
    fresh = init_model(_model(popularity_init=0.0), split.train)
    fresh.init_releases(split.train, 0.0, 0.0, seed=0)
    assert not fresh.module_.item_bias.weight.detach().any()  # bias not set from popularity
    assert float(fresh.module_.transition.abs().sum()) > 0
