"""Torch models (SASRec, GRU4Rec, two-tower): one-epoch smoke runs, a sequence rule with a
known answer (item i is followed by item i+1), batch independence and save/load round trips.
Dimensions are tiny so the file runs in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.registry import create

torch.set_num_threads(1)

N_ITEMS = 12
TINY = {"dim": 16, "batch_size": 32, "max_len": 8, "max_seconds": 60.0, "random_state": 0}
MODELS = {
    "sasrec": {**TINY, "layers": 1, "heads": 1, "dropout": 0.0},
    "gru4rec": {**TINY, "dropout": 0.0},
    "two_tower": {**TINY, "dropout": 0.0, "negatives": "full", "temperature": 0.1},
}


def _successor_data(n_users: int = 120, length: int = 7, seed: int = 0) -> InteractionData:
    """Each user walks i, i+1, i+2, ... (mod N_ITEMS) from a random start; every item has a
    tag naming its parity."""
    rng = np.random.default_rng(seed)
    seqs = {}
    for u in range(n_users):
        start = int(rng.integers(N_ITEMS))
        seqs[f"u{u}"] = [f"i{(start + k) % N_ITEMS}" for k in range(length)]
    attrs = {f"i{i}": [f"parity{i % 2}"] for i in range(N_ITEMS)}
    return InteractionData.from_sequences(seqs, attrs)


@pytest.fixture(scope="module")
def data() -> InteractionData:
    return _successor_data()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_epoch_smoke_run(name, data):
    split = leave_one_out(data)
    model = create(name, **MODELS[name], epochs=1).fit(split.train, split.valid)
    scores = model.score(split.test.histories[:5] + [np.array([], dtype=np.int64)])
    assert scores.shape == (6, data.n_items)
    assert np.isfinite(scores).all()
    assert model.train_log_["history"][0]["epoch"] == 1.0
    assert "valid_ndcg@10" in model.train_log_["history"][0]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_learn_the_successor_rule(name, data):
    """The two-tower model sees the last item in its user tower, so it learns the rule too."""
    model = create(name, **{**MODELS[name], "lr": 1e-2}, epochs=40, patience=40).fit(data)
    idx = data.items.to_index
    histories = [idx([f"i{(s + k) % N_ITEMS}" for k in range(3)]) for s in range(N_ITEMS)]
    expected = idx([f"i{(s + 3) % N_ITEMS}" for s in range(N_ITEMS)])
    top, _ = model.recommend(histories, k=1)
    assert (top[:, 0] == expected).mean() >= 0.9


@pytest.mark.parametrize("name", sorted(MODELS))
def test_scores_do_not_depend_on_the_batch(name, data):
    model = create(name, **MODELS[name], epochs=1).fit(data)
    short, long = np.array([1, 2]), np.arange(8) % N_ITEMS
    alone = model.score([short])
    together = model.score([short, long])
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip(name, data, tmp_path):
    model = create(name, **MODELS[name], epochs=1).fit(data)
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    hist = [np.array([0, 1, 2]), np.array([5])]
    np.testing.assert_allclose(model.score(hist), loaded.score(hist), rtol=1e-5)
    assert loaded.get_params() == model.get_params()


def test_artifact_of_another_format_version_is_refused(data, tmp_path):
    import pickle

    model = create("sasrec", **MODELS["sasrec"], epochs=1).fit(data)
    model.save(tmp_path / "m")
    state = pickle.loads((tmp_path / "m" / "state.pkl").read_bytes())
    state["format_version"] = 999
    (tmp_path / "m" / "state.pkl").write_bytes(pickle.dumps(state))
    with pytest.raises(ValueError, match="format version"):
        type(model).load(tmp_path / "m")


def test_unfitted_model_refuses_to_score():
    from shoprec.models.base import NotFittedError

    with pytest.raises(NotFittedError):
        create("sasrec").score([np.array([1])])
