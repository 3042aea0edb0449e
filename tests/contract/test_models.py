"""One contract for every model in the registry: fit, score, recommend, save/load, ...

Known-answer data (implicit's checkerboard, made sequential): 20 items; even users only take
even items, odd users odd items, and every user walks up in steps of two (i is followed by
i + 2, wrapping within the parity). So a personalised model must recommend same-parity
items, and a sequence model must put i + 2 first after i.

Adding a model is one line in CASES.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models import registry
from shoprec.models.base import NotFittedError, Recommender

N_ITEMS = 20
N_USERS = 200


@dataclass(frozen=True)
class Case:
    """A registered model, parameters that fit the toy data quickly, and what it must learn."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    personal: bool = True  # recommends by the history (checkerboard must hold)
    sequential: bool = False  # learns order (i -> i + 2 must hold)


TINY_TORCH: dict[str, Any] = {
    "dim": 16,
    "epochs": 30,
    "lr": 0.01,
    "max_len": 10,
    "dropout": 0.0,
    "batch_size": 64,
    "num_threads": 1,
}

CASES: list[Case] = [
    Case("popularity", personal=False),
    Case("trending", personal=False),
    Case("itemknn", {"neighbours": 10}),
    Case("itemknn_seq", sequential=True),
    Case("ease", {"l2": 1.0}),
    Case("als", {"factors": 4, "regularization": 0.1, "alpha": 1.0, "num_threads": 1}),
    Case(
        "bpr",
        {
            "factors": 8,
            "iterations": 300,
            "learning_rate": 0.02,
            "regularization": 0.05,
            "num_threads": 1,
        },
    ),
    Case("hybrid", {"factors": 4, "regularization": 0.1, "alpha": 1.0}),
    Case("seqrules", sequential=True),
    Case("attrknn", personal=False),  # no attributes in the toy data: popularity only
    Case("sasrec", {**TINY_TORCH, "layers": 1, "heads": 1}, sequential=True),
    Case("gru4rec", {**TINY_TORCH, "epochs": 60, "lr": 0.02, "patience": 60}, sequential=True),
    Case("two_tower", {**TINY_TORCH, "negatives": "full", "temperature": 0.1}),
    Case("blend", {"members": [["seqrules", {}], ["attrknn", {}]]}, sequential=True),
    Case(
        "stacked",
        {"members": [["seqrules", {}], ["itemknn", {}]], "n_estimators": 50},
        sequential=True,
    ),
    Case("best", sequential=True),
]


def _id(case: Case) -> str:
    extra = ",".join(f"{k}={v}" for k, v in case.params.items() if k in ("similarity",))
    return case.name + (f"[{extra}]" if extra else "")


def toy_sequences(seed: int = 0) -> dict[str, list[str]]:
    """Users of parity u % 2. Even-numbered pairs walk up in steps of two from a random start
    (6-9 steps); the others take a random 5-8 of their parity's items in random order (so
    parity, not closeness, is what co-occurrence shows)."""
    rng = np.random.default_rng(seed)
    half = N_ITEMS // 2
    seqs = {}
    for u in range(N_USERS):
        parity = u % 2
        if (u // 2) % 2 == 0:
            start = int(rng.integers(half))
            steps = [(start + s) % half for s in range(int(rng.integers(6, 10)))]
        else:
            steps = rng.permutation(half)[: int(rng.integers(5, 9))].tolist()
        seqs[f"u{u}"] = [str(2 * s + parity) for s in steps]
    return seqs


@pytest.fixture(scope="module")
def toy() -> InteractionData:
    data = InteractionData.from_sequences(toy_sequences())
    # item ids are "0".."19": make index == id so the known answers read naturally
    order = np.argsort([int(i) for i in data.items.to_list()])
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    from shoprec.data.idmap import IdMap

    return InteractionData(
        users=data.users,
        items=IdMap([str(i) for i in range(N_ITEMS)]),
        user_idx=data.user_idx,
        item_idx=inverse[data.item_idx],
        timestamps=data.timestamps,
        weights=data.weights,
    )


_FITTED: dict[int, Recommender] = {}


def fitted(case: Case, data: InteractionData) -> Recommender:
    key = CASES.index(case)
    if key not in _FITTED:
        seqs = data.sequences()
        valid = EvalSet(
            users=np.arange(data.n_users),
            histories=[s[:-1] for s in seqs],
            targets=sp.csr_matrix(
                (np.ones(data.n_users), ([*range(data.n_users)], [s[-1] for s in seqs])),
                shape=(data.n_users, data.n_items),
            ),
        )
        _FITTED[key] = registry.create(case.name, **case.params).fit(data, valid=valid)
    return _FITTED[key]


def histories() -> list[np.ndarray]:
    return [np.array([0, 2, 4]), np.array([7, 9]), np.array([12]), np.array([19, 1, 3, 5])]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_score_shape_and_finite(case: Case, toy: InteractionData) -> None:
    scores = fitted(case, toy).score(histories())
    assert scores.shape == (4, N_ITEMS)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_recommend_excludes_history(case: Case, toy: InteractionData) -> None:
    hist = histories()
    idx, scores = fitted(case, toy).recommend(hist, k=5)
    assert idx.shape == scores.shape == (4, 5)
    for row, h in zip(idx, hist, strict=True):
        assert not set(row.tolist()) & set(h.tolist())
    assert (np.diff(scores, axis=1) <= 0).all(), "best first"


@pytest.mark.parametrize("case", [c for c in CASES if c.personal], ids=_id)
def test_checkerboard(case: Case, toy: InteractionData) -> None:
    """Even histories get even items, odd histories odd items."""
    hist = histories()
    idx, _ = fitted(case, toy).recommend(hist, k=3)
    for row, h in zip(idx, hist, strict=True):
        assert (row % 2 == h[0] % 2).all(), (case.name, h, row)


@pytest.mark.parametrize("case", [c for c in CASES if c.sequential], ids=_id)
def test_sequence_rule(case: Case, toy: InteractionData) -> None:
    """After ... i the next item is i + 2 (within the parity)."""
    hist = [np.array([0, 2, 4]), np.array([13, 15]), np.array([8])]
    idx, _ = fitted(case, toy).recommend(hist, k=1)
    assert idx[:, 0].tolist() == [6, 17, 10]


@pytest.mark.parametrize("case", [c for c in CASES if not c.personal], ids=_id)
def test_non_personal_same_for_everyone(case: Case, toy: InteractionData) -> None:
    """A non-personal model scores every history alike (and not all items alike)."""
    scores = fitted(case, toy).score(histories())
    assert (scores == scores[0]).all()
    assert scores[0].max() > scores[0].min()


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_save_load_roundtrip(case: Case, toy: InteractionData, tmp_path) -> None:
    model = fitted(case, toy)
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(histories()), model.score(histories()))
    assert json.loads(json.dumps(loaded.get_params())) == json.loads(json.dumps(model.get_params()))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_candidates_restrict(case: Case, toy: InteractionData) -> None:
    cands = np.array([1, 3, 8, 11, 14])
    idx, _ = fitted(case, toy).recommend(histories(), k=3, candidates=cands)
    assert set(idx.ravel().tolist()) <= set(cands.tolist())


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_similar_items(case: Case, toy: InteractionData) -> None:
    items = np.array([0, 5, 12])
    idx, scores = fitted(case, toy).similar_items(items, k=4)
    assert idx.shape == scores.shape == (3, 4)
    for item, row in zip(items, idx, strict=True):
        assert item not in row
        if case.personal:
            assert row[0] % 2 == item % 2


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_empty_history(case: Case, toy: InteractionData) -> None:
    model = fitted(case, toy)
    scores = model.score([np.array([], dtype=np.int64), np.array([4])])
    assert scores.shape == (2, N_ITEMS) and np.isfinite(scores).all()
    idx, _ = model.recommend([np.array([], dtype=np.int64)], k=5)
    assert len(set(idx[0].tolist())) == 5


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_unfitted_raises(case: Case) -> None:
    with pytest.raises(NotFittedError):
        registry.create(case.name, **case.params).score(histories())


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_constructor_only_stores(case: Case) -> None:
    """scikit-learn's rule: parameters stored unchanged under their own names."""
    model = registry.create(case.name, **case.params)
    params = model.get_params()
    for k, v in case.params.items():
        assert params[k] == v
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
