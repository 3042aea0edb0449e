"""The harness, protocols, report and `shoprec evaluate` on data with known answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from shoprec.config import SplitConfig
from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.evaluation import harness
from shoprec.evaluation.protocols import (
    available_protocols,
    get_protocol,
    make_split,
    register_protocol,
)
from shoprec.evaluation.report import report_to_dict
from shoprec.models.base import Recommender

N_ITEMS = 30


def walks(n_users: int = 40, seed: int = 0) -> dict[str, list[str]]:
    """Every user walks i, i+1, i+2, ... (mod N_ITEMS): the next item is always last + 1."""
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(n_users):
        start = int(rng.integers(N_ITEMS))
        out[f"u{u}"] = [f"i{(start + s) % N_ITEMS}" for s in range(int(rng.integers(3, 12)))]
    return out


class NextItemOracle(Recommender):
    """Knows the rule: scores the successor of the last item 1, everything else by -index."""

    name = "oracle"

    def __init__(self, offset: int = 1):
        self.offset = offset

    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        ids = data.items.to_list()
        self.succ_ = np.array(
            [data.items.get(f"i{(int(i[1:]) + self.offset) % N_ITEMS}") for i in ids]
        )
        self.n_items_ = data.n_items
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        s = np.tile(-np.arange(self.n_items_, dtype=np.float32) / 1e3, (len(histories), 1))
        for r, h in enumerate(histories):
            if len(h):
                s[r, self.succ_[h[-1]]] = 1.0
        return s


@pytest.fixture(scope="module")
def data() -> InteractionData:
    return InteractionData.from_sequences(walks())


def test_perfect_model_scores_one(data: InteractionData) -> None:
    split = make_split(data, "loo")
    model = NextItemOracle().fit(split.train)
    m, slices = harness.evaluate(model, split.test, split.train, ks=(1, 5, 10))
    for name in ("HR@1", "NDCG@1", "HR@10", "NDCG@10", "MRR", "R@5"):
        assert m[name] == pytest.approx(1.0), name
    assert m["P@5"] == pytest.approx(0.2)
    assert sum(s["users"] for k, s in slices.items() if k.startswith("hist")) == len(split.test)


def test_wrong_model_scores_zero_and_batching_does_not_matter(data: InteractionData) -> None:
    split = make_split(data, "loo")
    model = NextItemOracle(offset=2).fit(split.train)  # one step too far: never first
    a, _ = harness.evaluate(model, split.test, split.train, ks=(1, 10), batch_size=7)
    b, _ = harness.evaluate(model, split.test, split.train, ks=(1, 10), batch_size=1000)
    assert a == pytest.approx(b)
    assert a["HR@1"] == 0.0 and a["MRR"] < 1.0


def test_beyond_accuracy_present(data: InteractionData) -> None:
    split = make_split(data, "loo")
    m, _ = harness.evaluate(NextItemOracle().fit(split.train), split.test, split.train)
    assert 0 < m["coverage@10"] <= 1 and m["novelty@10"] > 0 and 0 <= m["gini@10"] <= 1
    assert "ILD@10" not in m  # no item attributes in this data
    vec = np.eye(data.n_items)
    m2, _ = harness.evaluate(
        NextItemOracle().fit(split.train), split.test, split.train, item_vectors=vec
    )
    assert m2["ILD@10"] == pytest.approx(1.0)  # orthogonal embeddings: every pair differs


def test_protocol_registry(data: InteractionData) -> None:
    assert {"loo", "temporal", "random"} <= set(available_protocols())
    assert get_protocol("leave_one_out") is get_protocol("loo")
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("nope")

    def last_two(d: InteractionData, cfg: SplitConfig):
        return make_split(d, "loo", cfg)

    register_protocol("custom-test", last_two)
    assert make_split(data, "custom-test").test.targets.shape == (len(data.users), N_ITEMS)
    with pytest.raises(ValueError):
        register_protocol("bad", "no_colon")


def test_temporal_protocol_runs() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 30, 600).astype(str),
            "item_id": rng.integers(0, 40, 600).astype(str),
            "timestamp": np.sort(rng.uniform(0, 1e6, 600)),
        }
    )
    d = InteractionData.from_frame(frame)
    rep = harness.run(d, ["popularity", "itemknn"], protocol="temporal")
    assert [r.model for r in rep.results] == ["popularity", "itemknn"]
    assert rep.protocol == "temporal"
    assert all(0 <= r.metrics["HR@20"] <= 1 for r in rep.results)


def test_best_fallback_chooses_on_validation(data: InteractionData) -> None:
    split = make_split(data, "loo")
    model, chosen = harness.fit_best_fallback(split, candidates=("popularity", "itemknn"))
    assert chosen == "itemknn"  # co-occurrence captures the walk, popularity cannot
    assert model.name == "itemknn"


def test_report_json_contract(data: InteractionData) -> None:
    rep = harness.run(data, ["popularity"], protocol="loo")
    d = report_to_dict(rep)
    assert d["dataset"] == {"users": 40, "items": N_ITEMS, "interactions": data.n_interactions}
    assert d["protocol"] == "loo"
    row = d["results"][0]
    required = ["model", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR",
                "coverage@10", "train_seconds", "eval_seconds"]  # fmt: skip
    assert list(row)[: len(required)] == required
    json.dumps(d)


def test_cli_evaluate(tmp_path, data: InteractionData) -> None:
    from shoprec.cli import app

    path = tmp_path / "toy.txt"
    path.write_text("".join(f"{u} {' '.join(s)}\n" for u, s in walks().items()))
    attrs = tmp_path / "attrs.json"
    attrs.write_text(json.dumps({f"i{i}": [i % 3] for i in range(N_ITEMS)}))
    out = tmp_path / "out.json"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(path),
            "--format",
            "seq",
            "--item-attributes",
            str(attrs),
            "--models",
            "popularity,itemknn",
            "--json",
            str(out),
            "--slices",
        ],
    )
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert [r["model"] for r in got["results"]] == ["popularity", "itemknn"]
    assert got["dataset"]["users"] == 40
    assert got["results"][1]["HR@10"] > got["results"][0]["HR@10"]
    assert "ILD@10" in got["results"][0]
    assert "by slice" in res.output and "hist[0,5)" in res.output
    bad = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--models", "nope"])
    assert bad.exit_code == 2


def test_catalog_smaller_than_list_length() -> None:
    """Regression: a catalog of fewer than 10 items broke the top-10 list buffer."""
    d = InteractionData.from_sequences({"u1": list("abcd"), "u2": list("bcde"), "u3": list("acde")})
    split = make_split(d, "loo")
    from shoprec.models.popularity import Popularity

    m, _ = harness.evaluate(Popularity().fit(split.train), split.test, split.train)
    assert 0 < m["coverage@10"] <= 1.0 and m["HR@10"] == 1.0
