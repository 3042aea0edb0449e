"""Federated training: clients keep their events, FedAvg matches centralised training on a
known pattern, DP-FedAvg clips, noises and reports its epsilon."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.ranking import evaluate_ndcg
from shoprec.privacy.federated import (
    FederatedConfig,
    ShopClient,
    federated_train,
    get_weights,
    init_model,
    partition_users,
)
from tests.unit.privacy.helpers import attribute_model, write_seq_files

torch.set_num_threads(1)


def _cyclic(n_users: int = 120, n_items: int = 10, length: int = 7) -> InteractionData:
    rng = np.random.default_rng(1)
    starts = rng.integers(0, n_items, n_users)
    return InteractionData.from_sequences(
        {f"u{u}": [str((s + j) % n_items) for j in range(length)] for u, s in enumerate(starts)}
    )


def _make() -> PrivateSeq:
    return PrivateSeq(dim=16, heads=2, dropout=0.0, max_len=8, batch_size=20, lr=1e-2)


def test_partition_is_disjoint_balanced_and_covers_trainable_users():
    data = _cyclic(n_users=50)
    shards = partition_users(data, 7, seed=3)
    owners = [set(np.unique(s.user_idx)) for s in shards]
    assert sum(len(o) for o in owners) == 50
    assert set().union(*owners) == set(range(50))
    assert max(map(len, owners)) - min(map(len, owners)) <= 1
    assert sum(s.n_interactions for s in shards) == data.n_interactions
    with pytest.raises(ValueError):
        partition_users(data, 51)


def test_a_client_sends_weights_only():
    data = _cyclic(n_users=20)
    shard = partition_users(data, 2)[0]
    client = ShopClient(_make, shard)
    start = get_weights(init_model(_make(), data).module_)
    weights, n, metrics = client.fit(start, {"local_epochs": 1})
    assert n == len(np.unique(shard.user_idx))
    assert [w.shape for w in weights] == [w.shape for w in start]
    assert all(w.dtype == np.float32 for w in weights)
    assert any(not np.array_equal(a, b) for a, b in zip(weights, start, strict=True))
    assert set(metrics) == {"loss"}


@pytest.mark.slow
def test_fedavg_learns_the_pattern_like_centralised_training():
    split = leave_one_out(_cyclic())
    model, report = federated_train(_make, split.train, FederatedConfig(n_clients=4, rounds=6))
    assert evaluate_ndcg(model, split.test) > 0.9
    assert len(report["rounds"]) == 6 and report["dp"] is None
    assert report["rounds"][-1]["mean_client_loss"] < report["rounds"][0]["mean_client_loss"]


@pytest.mark.slow
def test_dp_fedavg_reports_epsilon_and_noise_changes_the_model():
    split = leave_one_out(_cyclic(n_users=40))
    cfg = FederatedConfig(
        n_clients=40,
        rounds=3,
        fraction_fit=0.5,
        dp_noise_multiplier=1.0,
        dp_clip=0.5,
        dp_delta=1e-3,
    )
    model, report = federated_train(_make, split.train, cfg)
    dp = report["dp"]
    assert dp["unit"] == "user" and dp["noise_multiplier"] == 1.0
    assert 0 < dp["epsilon"] < 20
    plain, _ = federated_train(
        _make, split.train, FederatedConfig(n_clients=40, rounds=3, fraction_fit=0.5)
    )
    diff = [
        np.abs(a - b).max()
        for a, b in zip(get_weights(model.module_), get_weights(plain.module_), strict=True)
    ]
    assert max(diff) > 1e-3


def _with_releases() -> PrivateSeq:
    return attribute_model(
        transition_init=3.0, item_transition_init=5.0, dropout=0.0, batch_size=20, lr=1e-2
    )


def test_released_statistics_are_summed_over_clients_into_the_centralised_priors():
    from tests.unit.privacy.test_dp_item_transitions import favourite_data

    data = favourite_data(n_users=60)
    central = init_model(_with_releases(), data)
    central.init_releases(data, 0.0, 0.0, central.random_state + 1)
    fed, report = federated_train(
        _with_releases, data, FederatedConfig(n_clients=4, rounds=1, seed=2)
    )
    assert report["released_statistics"] == ["item_transition", "popularity", "transition"]
    for name in ("transition", "item_transition"):
        torch.testing.assert_close(
            getattr(fed.module_, name), getattr(central.module_, name), rtol=1e-5, atol=1e-6
        )
    # one client's sums are only its own users' part of the total
    shard = partition_users(data, 4, seed=2)[0]
    part = ShopClient(_with_releases, shard).release_sums()
    assert 0 < part["popularity"].sum() < central.release_sums(data)["popularity"].sum()
    with pytest.raises(ValueError, match="DP-FedAvg"):
        federated_train(
            _with_releases, data, FederatedConfig(n_clients=4, rounds=1, dp_noise_multiplier=1.0)
        )


def test_train_federated_cli_with_released_statistics(tmp_path):
    import json

    from typer.testing import CliRunner

    from shoprec.cli import app
    from tests.unit.privacy.test_dp_item_transitions import favourite_data

    seqs, attrs = write_seq_files(favourite_data(n_users=60), tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "train-federated",
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
            "--transition-init",
            "3",
            "--item-transition-init",
            "5",
            "--fixed-item-bias",
            "--clients",
            "3",
            "--rounds",
            "1",
            "--json",
            str(tmp_path / "fed.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "fed.json").read_text())["report"]
    assert report["released_statistics"] == ["item_transition", "popularity", "transition"]
    assert 0 <= json.loads((tmp_path / "fed.json").read_text())["test NDCG@10"] <= 1
