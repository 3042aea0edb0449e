"""The privacy commands end to end on tiny data: forget-user with pseudonyms and an audit
log, train-private writing (epsilon, delta) into the artifact, audit-privacy printing AUCs."""

from __future__ import annotations

import json
import random

import pytest
import torch
from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.data.pseudonymize import KeyRing, Pseudonymizer
from shoprec.storage import open_store
from shoprec.storage.artifacts import read_manifest
from shoprec.storage.erasure import ErasureLog
from shoprec.types import Event

torch.set_num_threads(1)
runner = CliRunner()
SECRET = "an-integration-test-secret"


def test_forget_user_by_raw_id_erases_the_pseudonym_and_logs_it(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"k1 {SECRET}\n")
    p = Pseudonymizer(KeyRing.from_file(keys))
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(url) as store:
        store.add_events(
            [
                p.event(Event("alice@example.com", "i1", "view", 1.0)),
                p.event(Event("bob", "i1", "view", 2.0)),
            ]
        )
    log = tmp_path / "erasures.jsonl"
    res = runner.invoke(
        app,
        [
            "forget-user",
            "alice@example.com",
            "--store",
            url,
            "--keys-file",
            str(keys),
            "--erasure-log",
            str(log),
        ],
    )
    assert res.exit_code == 0, res.output
    with open_store(url) as store:
        assert set(store.events_frame()["user_id"]) == {p.user_id("bob")}
    (rec,) = ErasureLog(log).records()
    assert rec.pseudonym == p.user_id("alice@example.com") and rec.removed["events"] == 1
    assert "alice" not in log.read_text() and "alice" not in res.output


@pytest.mark.slow
def test_train_private_and_audit_privacy(tmp_path):
    rng = random.Random(0)
    data = tmp_path / "tiny.txt"
    data.write_text(
        "".join(
            f"u{u} " + " ".join(str((s + j) % 15) for j in range(6)) + "\n"
            for u, s in ((u, rng.randrange(15)) for u in range(80))
        )
    )
    res = runner.invoke(
        app,
        [
            "train-private",
            "--data",
            str(data),
            "--format",
            "seq",
            "--out",
            str(tmp_path / "art"),
            "--epsilon",
            "4",
            "--epochs",
            "3",
            "--batch-size",
            "20",
            "--dim",
            "8",
            "--max-len",
            "6",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    _, manifest = read_manifest(tmp_path / "art")
    assert manifest["privacy"]["unit"] == "user"
    assert 0 < manifest["privacy"]["epsilon"] <= 4.0 + 1e-6
    assert (
        json.loads((tmp_path / "r.json").read_text())["epsilon"] == manifest["privacy"]["epsilon"]
    )
    res = runner.invoke(
        app,
        [
            "audit-privacy",
            "--data",
            str(data),
            "--format",
            "seq",
            "--epsilons",
            "inf,4",
            "--epochs",
            "3",
            "--batch-size",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "attack AUC" in res.output and "advantage" in res.output
