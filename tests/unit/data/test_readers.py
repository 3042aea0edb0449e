import json

import pandas as pd
import pytest

from shoprec.data.readers import guess_format, parse_mapping, read_records
from shoprec.types import RecordError


def test_csv_with_mapping_and_wrong_field_count(tmp_path):
    p = tmp_path / "ev.csv"
    p.write_text(
        "visitor,product,kind,ts\nu1,i1,view,1767225600\nu2,i2,click\nu3,i3,purchase,1767225601\n"
    )
    recs = list(
        read_records(
            p, mapping=parse_mapping("visitor=user_id,product=item_id,kind=event_type,ts=timestamp")
        )
    )
    assert (
        isinstance(recs[1], RecordError)
        and recs[1].reason == "wrong_field_count"
        and recs[1].record == 3
    )
    assert recs[0] == (
        "ev.csv",
        2,
        {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": "1767225600"},
    )
    assert recs[2][2]["user_id"] == "u3"


def test_jsonl_and_parquet(tmp_path):
    p = tmp_path / "ev.jsonl"
    p.write_text(json.dumps({"user_id": "u", "item_id": "i"}) + "\n{broken\n[1]\n")
    recs = list(read_records(p))
    assert recs[0][2] == {"user_id": "u", "item_id": "i"}
    assert [r.reason for r in recs[1:]] == ["bad_json", "not_an_object"]
    q = tmp_path / "ev.parquet"
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}).to_parquet(q)
    assert [r[2]["user_id"] for r in read_records(q)] == ["a", "b"]


def test_research_formats(tmp_path):
    seq = tmp_path / "s.txt"
    seq.write_text("1 10 11 12\n2 11 13\n")
    recs = list(read_records(seq, "seq"))
    assert [(r[2]["user_id"], r[2]["item_id"], r[2]["timestamp"]) for r in recs[:3]] == [
        ("1", "10", 0),
        ("1", "11", 1),
        ("1", "12", 2),
    ]
    otto = tmp_path / "o.jsonl"
    otto.write_text(
        json.dumps({"session": 5, "events": [{"aid": 1, "ts": 1659304800025, "type": "carts"}]})
        + "\n"
    )
    (r,) = list(read_records(otto, "otto"))
    assert r[2]["event_type"] == "add_to_cart" and r[2]["user_id"] == 5
    dig = tmp_path / "d.csv"
    dig.write_text("session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n")
    (r,) = list(read_records(dig, "diginetica"))
    assert r[2]["user_id"] == "s1" and r[2]["timestamp"] == pytest.approx(1462752000 + 526.309)
    inter = tmp_path / "x.inter"
    inter.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t881250949\n1\t2\n"
    )
    recs = list(read_records(inter))
    assert recs[0][2] == {
        "user_id": "1",
        "item_id": "2",
        "value": "3",
        "event_type": "rating",
        "timestamp": "881250949",
    }
    assert recs[1].reason == "wrong_field_count"
    ml = tmp_path / "ratings.dat"
    ml.write_text("1::1193::5::978300760\n")
    assert next(iter(read_records(ml)))[2]["value"] == "5"


def test_guess_format_and_errors(tmp_path):
    assert guess_format("a/b/Beauty.txt") == "seq" and guess_format("x.csv.gz") == "csv"
    with pytest.raises(ValueError, match="--format"):
        guess_format("x.bin")
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="source=target"):
        parse_mapping("a=b,c")
