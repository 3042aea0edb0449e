"""`shoprec train` end to end on a SQLite store: events in, a loadable artifact out."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.pipeline import RecRequest, load_artifact
from shoprec.storage import open_store
from shoprec.types import Event, Item
from tests.unit.pipeline.fixtures import items_frame, make_data


@pytest.mark.slow
def test_train_command_writes_a_loadable_artifact(tmp_path):
    data = make_data(n_users=150, length=6)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    order = data.order
    events = [
        Event(data.users.to_ids([u])[0], data.items.to_ids([i])[0], "purchase", float(t))
        for u, i, t in zip(
            data.user_idx[order], data.item_idx[order], data.timestamps[order], strict=True
        )
    ]
    with open_store(url) as store:
        store.add_events(events)
        store.upsert_items(
            [
                Item(
                    r.item_id, title=r.title, category=r.category, price=r.price, stock=int(r.stock)
                )
                for r in items_frame().itertuples()
            ]
        )
    cfg = tmp_path / "shoprec.toml"
    cfg.write_text("[pipeline]\nranker_rounds = 20\nexploration_slots = 0\n")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--store",
            url,
            "--out",
            str(tmp_path / "art"),
            "--config",
            str(cfg),
            "--json",
            str(tmp_path / "t.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "HR@10" in result.stdout
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["metrics"]["pipeline"]["hr@10"] > 0.5
    pipe = load_artifact(tmp_path / "art")
    assert pipe.config.ranker_rounds == 20
    # a history as long as the shoppers' the ranker learned from (one-item histories are
    # outside what 150 toy users teach it, and their order varies with the platform)
    walk = ["c1_0", "c1_1", "c1_2"]
    assert pipe.recommend(RecRequest(k=1, history=walk))[0].item_id == "c1_3"
    assert "c5_9" not in [r.item_id for r in pipe.recommend(RecRequest(k=60))]


def test_train_command_refuses_bad_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[pipeline]\nranker = 'magic'\n")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--out",
            str(tmp_path / "art"),
            "--config",
            str(cfg),
        ],
    )
    assert result.exit_code == 2
