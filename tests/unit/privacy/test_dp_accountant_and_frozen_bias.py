"""The PRV accountant (tighter than RDP: less noise for the same target epsilon, reported
epsilon is its own), and `PrivateSeq(learn_item_bias=False)`: under DP the item bias stays at
its released popularity start and gets no noise, while everything else still trains."""

from __future__ import annotations

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


def test_prv_is_tighter_than_rdp_for_the_same_mechanism():
    for releases in (0.0, (2.0, 1.2)):
        rdp = epsilon_spent(1.1, 0.09, 110, 4.5e-6, releases)
        prv = epsilon_spent(1.1, 0.09, 110, 4.5e-6, releases, accountant="prv")
        assert 0.5 * rdp < prv < rdp
    with pytest.raises(ValueError, match="accountant"):
        epsilon_spent(1.0, 0.1, 10, 1e-5, accountant="moments")


def test_prv_calibrates_less_noise_and_reports_its_own_epsilon():
    split = leave_one_out(brand_data())
    reports = {
        acc: fit_private(_model(), split.train, 4.0, accountant=acc) for acc in ("rdp", "prv")
    }
    rdp, prv = reports["rdp"], reports["prv"]
    assert prv.accountant == "prv" and rdp.accountant == "rdp"
    assert prv.noise_multiplier < rdp.noise_multiplier
    assert prv.popularity_noise_multiplier < rdp.popularity_noise_multiplier
    assert prv.transition_noise_multiplier < rdp.transition_noise_multiplier
    releases = (prv.popularity_noise_multiplier, prv.transition_noise_multiplier)
    spent = epsilon_spent(
        prv.noise_multiplier, prv.sample_rate, prv.steps, prv.delta, releases, "prv"
    )
    assert prv.epsilon == pytest.approx(spent) and prv.epsilon <= 4.0 + 1e-6
    # the same noise read by the looser accountant spends more than the target
    assert (
        epsilon_spent(prv.noise_multiplier, prv.sample_rate, prv.steps, prv.delta, releases) > 4.0
    )


@pytest.mark.parametrize("epsilon", [4.0, float("inf")])
def test_a_fixed_item_bias_keeps_its_released_start_while_the_rest_trains(epsilon):
    split = leave_one_out(brand_data())
    model = _model(learn_item_bias=False, epochs=2)
    report = fit_private(model, split.train, epsilon)
    module = model.module_
    assert not module.item_bias.weight.requires_grad
    counts = model.popularity_counts(split.train)
    if epsilon == float("inf"):  # exact counts: the bias is exactly 0.3 log(1 + c)
        want = 0.3 * torch.log1p(torch.as_tensor(counts, dtype=torch.float32))
        torch.testing.assert_close(module.item_bias.weight[:, 0], want)
    start = init_model(_model(learn_item_bias=False), split.train)
    pop, trans = report.popularity_noise_multiplier, report.transition_noise_multiplier
    start.init_releases(split.train, pop, trans, start.random_state + 1)  # fit_private's release
    fresh = start.module_
    trained = dict(module.named_parameters())
    moved = [n for n, p in fresh.named_parameters() if not torch.equal(p, trained[n])]
    assert "item_bias.weight" not in moved
    assert {"out_attr.weight", "attr_emb.weight", "gate.weight"} <= set(moved)
    assert model.score([split.train.sequences()[0]]).shape == (1, split.train.n_items)
