"""Training the pipeline (LightGBM ranker on validation targets) and the artifact round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shoprec.models import registry
from shoprec.pipeline import (
    ArtifactError,
    Campaign,
    PipelineConfig,
    RecRequest,
    load_artifact,
    save_artifact,
    train_pipeline,
)
from shoprec.pipeline.offline import evaluate_pipeline, evaluate_source
from shoprec.pipeline.ranker import LightGBMRanker
from tests.unit.pipeline.fixtures import make_data

registry.register("test_next_item", "tests.unit.pipeline.fixtures:NextItemModel")


@pytest.fixture(scope="module")
def trained():
    data = make_data(n_users=300, length=7)
    cfg = PipelineConfig(models=("test_next_item",), ranker_rounds=30, exploration_slots=0)
    return data, train_pipeline(data, cfg)


def test_lightgbm_ranker_is_trained_and_pipeline_beats_or_ties_best_source(trained):
    data, result = trained
    assert isinstance(result.pipeline.ranker, LightGBMRanker)
    m = result.metrics
    assert m["ranker"] == "lightgbm"
    best = max(m[s]["hr@10"] for s in result.pipeline.sources)
    assert m["pipeline"]["hr@10"] >= best - 1e-9
    assert m["pipeline"]["hr@10"] > 0.9  # the successor is always retrievable here


def test_offline_check_on_test_targets(trained):
    data, result = trained
    p, test = result.pipeline, result.split.test
    full = evaluate_pipeline(p, test, 10)
    alone = evaluate_source(p, "trending", test, 10)
    assert full["hr@10"] > alone["hr@10"]
    assert 0 < full["coverage"] <= 1 and 0 <= full["ild"] <= 1


def test_artifact_round_trip_gives_same_answers(trained, tmp_path):
    data, result = trained
    p = result.pipeline
    p.set_campaigns([Campaign("c0_9", "pin", slot=1)])
    path = save_artifact(p, tmp_path, result.metrics, data.fingerprint())
    q = load_artifact(tmp_path)  # through the `latest` pointer
    assert q.version == path.name
    assert q.info["fingerprint"] == data.fingerprint()
    assert q.info["erasures"] == []
    for req in (
        RecRequest(user_id="u3", k=8),
        RecRequest(k=5, history=["c1_2"]),
        RecRequest(user_id="nobody", k=6, diversity=0.5),
    ):
        a, b = p.recommend(req), q.recommend(req)
        assert [r.item_id for r in a] == [r.item_id for r in b]
        assert np.allclose([r.score for r in a], [r.score for r in b])
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["models"]["test_next_item"]["model"] == "test_next_item"
    assert manifest["metrics"]["pipeline"]["hr@10"] == result.metrics["pipeline"]["hr@10"]


def test_corrupt_payload_is_refused(trained, tmp_path):
    data, result = trained
    path = save_artifact(result.pipeline, tmp_path)
    (path / "retrievers" / "01-item_to_item" / "state.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(path)


def test_forgotten_user_history_is_not_saved(trained, tmp_path):
    data, result = trained
    p = result.pipeline
    p.forget_user("u5")
    q = load_artifact(save_artifact(p, tmp_path))
    assert q.resolve(RecRequest(user_id="u5")).cold
    assert not q.resolve(RecRequest(user_id="u6")).cold
