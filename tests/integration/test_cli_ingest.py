"""Issue 2's acceptance: a file with malformed rows is ingested with every bad row named and
every good row stored; ingesting it again adds nothing."""

import json

from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.storage import open_store

runner = CliRunner()

EVENTS = """event_id,user_id,item_id,event_type,timestamp,value
e1,u1,i1,view,2026-01-01T10:00:00Z,
e2,u1,i2,purchase,1767261600,19.99
e3,,i3,view,1767261601,
e4,u2,i1,teleport,1767261602,
e5,u2,i1,click,not-a-time,
e6,u2,i2,rating,1767261603,11
e7,u2,i3
e2,u1,i2,purchase,1767261600,19.99
e8,u3,i1,add_to_cart,1767261604,
"""


def test_ingest_names_every_bad_row_and_is_idempotent(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,price,stock\ni1,Red shoe,10,5\ni2,Blue bag,-3,1\ni3,Lamp,7,0\n")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    rejects = tmp_path / "rejects.jsonl"
    summary = tmp_path / "summary.json"
    res = runner.invoke(
        app,
        [
            "ingest",
            "--events",
            str(events),
            "--items",
            str(items),
            "--store",
            db,
            "--rejects",
            str(rejects),
            "--json",
            str(summary),
        ],
    )
    assert res.exit_code == 0, res.output
    got = json.loads(summary.read_text())
    # 9 event rows + 3 item rows in = accepted + rejected + duplicates
    assert got["accepted"] + got["rejected"] + got["duplicates"] == 12
    assert (got["accepted"], got["rejected"], got["duplicates"]) == (5, 6, 1)
    bad = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert {(b["source"], b["record"], b["field"], b["reason"]) for b in bad} == {
        ("items.csv", 3, "price", "out_of_range"),
        ("events.csv", 4, "user_id", "missing"),
        ("events.csv", 5, "event_type", "unknown_event_type"),
        ("events.csv", 6, "timestamp", "bad_timestamp"),
        ("events.csv", 7, "value", "out_of_range"),
        ("events.csv", 8, "", "wrong_field_count"),
    }
    with open_store(db) as st:
        stored = st.events_frame()
        assert sorted(stored["event_id"]) == ["e1", "e2", "e8"]
        assert sorted(st.items_frame()["item_id"]) == ["i1", "i3"]

    again = runner.invoke(
        app, ["ingest", "--events", str(events), "--store", db, "--json", str(summary)]
    )
    assert again.exit_code == 0
    second = json.loads(summary.read_text())
    assert second["accepted"] == 0 and second["duplicates"] == 4
    with open_store(db) as st:
        assert len(st.events_frame()) == 3


def test_strict_stops_with_non_zero_exit(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    res = runner.invoke(app, ["ingest", "--events", str(events), "--store", db, "--strict"])
    assert res.exit_code == 1
    assert "events.csv:4" in res.output and "user_id" in res.output


def test_bad_invocations_exit_non_zero(tmp_path):
    assert runner.invoke(app, ["ingest", "--store", "sqlite:///x.db"]).exit_code == 2
    res = runner.invoke(
        app,
        ["ingest", "--events", str(tmp_path / "nope.csv"), "--store", f"sqlite:///{tmp_path}/a.db"],
    )
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(
        app, ["ingest", "--events", str(tmp_path / "x.csv"), "--store", "mongodb://x"]
    )
    assert res.exit_code == 2


def test_generate_then_ingest_then_stats(tmp_path):
    out = tmp_path / "shop"
    assert (
        runner.invoke(
            app, ["generate", "--out", str(out), "--users", "40", "--items", "30", "--no-images"]
        ).exit_code
        == 0
    )
    db = f"sqlite:///{tmp_path / 's.db'}"
    res = runner.invoke(
        app,
        [
            "ingest",
            "--events",
            str(out / "events.csv"),
            "--items",
            str(out / "items.csv"),
            "--users",
            str(out / "users.csv"),
            "--store",
            db,
            "--json",
            str(tmp_path / "j.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "j.json").read_text())
    assert got["rejected"] == 0 and got["duplicates"] == 0
    res = runner.invoke(app, ["stats", "--store", db, "--json", str(tmp_path / "stats.json")])
    assert res.exit_code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["items"] == 30
