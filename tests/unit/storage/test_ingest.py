"""The ingest engine: every record lands in exactly one bucket, and rejects are named."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprec.data.schema import parse_event
from shoprec.storage import open_store
from shoprec.storage.base import AddResult, Store
from shoprec.storage.ingest import IngestError, IngestReport, ingest
from shoprec.types import Item, RecordError, User


@pytest.fixture
def store() -> Iterator[Store]:
    s = open_store("sqlite:///:memory:")
    yield s
    s.close()


def recs(raws: list[Any], source: str = "f.csv") -> list[tuple[str, int, Any]]:
    return [(source, k + 1, r) for k, r in enumerate(raws)]


GOOD = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": "100"}


def test_rejects_are_named_and_good_rows_stored(store: Store) -> None:
    raws = [
        GOOD,
        {"user_id": "", "item_id": "i1", "event_type": "view", "timestamp": "1"},
        {"user_id": "u1", "item_id": "i2", "event_type": "teleport", "timestamp": "1"},
        {"user_id": "u1", "item_id": "i2", "event_type": "view", "timestamp": "yesterday"},
        {"user_id": "u1", "item_id": "i3", "event_type": "rating", "timestamp": "5", "value": "11"},
        {
            "user_id": "u2",
            "item_id": "i2",
            "event_type": "click",
            "timestamp": "2024-05-01T10:00:00",
        },
    ]
    stream: list[Any] = recs(raws)
    stream.insert(3, RecordError("f.csv", 99, "", "wrong_field_count", "expected 4 fields, got 2"))
    out = io.StringIO()
    report = ingest(stream, store, rejects=out)
    assert report.as_dict() == {
        "accepted": 2,
        "rejected": 5,
        "duplicates": 0,
        "reasons": {
            "bad_timestamp": 1,
            "missing": 1,
            "out_of_range": 1,
            "unknown_event_type": 1,
            "wrong_field_count": 1,
        },
    }
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["record"], x["field"], x["reason"]) for x in lines] == [
        (2, "user_id", "missing"),
        (3, "event_type", "unknown_event_type"),
        (99, "", "wrong_field_count"),
        (4, "timestamp", "bad_timestamp"),
        (5, "value", "out_of_range"),
    ]
    assert all(set(x) == {"source", "record", "field", "reason", "detail"} for x in lines)
    assert lines[2]["detail"] == "expected 4 fields, got 2" and lines[0]["source"] == "f.csv"
    assert store.events_frame().user_id.tolist() == ["u1", "u2"]


def test_strict_stops_at_first_bad_record_after_storing_earlier_ones(store: Store) -> None:
    raws = [
        GOOD,
        dict(GOOD, timestamp="101"),
        dict(GOOD, event_type="?"),
        dict(GOOD, timestamp="102"),
    ]
    out = io.StringIO()
    with pytest.raises(IngestError, match="2 record\\(s\\) were stored before it") as info:
        ingest(recs(raws), store, strict=True, rejects=out, batch_size=1000)
    assert info.value.error.record == 3 and info.value.error.reason == "unknown_event_type"
    assert info.value.report.accepted == 2
    assert store.count_events() == 2  # the batch before the bad record was written
    assert json.loads(out.getvalue())["record"] == 3


def test_strict_counts_duplicates_before_the_error(store: Store) -> None:
    ingest(recs([GOOD]), store)
    with pytest.raises(IngestError) as info:
        ingest(recs([GOOD, {"user_id": "x"}]), store, strict=True)
    assert (info.value.report.accepted, info.value.report.duplicates) == (0, 1)


def test_items_and_users_upsert_and_count_repeated_ids(store: Store) -> None:
    items = [
        {"item_id": "a", "title": "A1", "price": "3.5"},
        {"item_id": "b", "title": "B", "stock": "2"},
        {"item_id": "a", "title": "A2"},
        {"item_id": "c", "price": "-1"},
    ]
    report = ingest(recs(items), store, kind="items", batch_size=2)
    assert (report.accepted, report.rejected, report.duplicates) == (2, 1, 1)
    assert store.get_items(["a"])["a"] == Item("a", title="A2")  # the later record wins
    users = [{"user_id": "u1", "country": "DE"}, {"user_id": "u2"}, {"user_id": ""}]
    report = ingest(recs(users), store, kind="users")
    assert (report.accepted, report.rejected, report.duplicates) == (2, 1, 0)
    assert store.users_frame().attributes.tolist() == [{"country": "DE"}, {}]
    assert User("u1", {"country": "DE"}).attributes == store.users_frame().attributes[0]


def test_progress_sees_every_record(store: Store) -> None:
    seen: list[int] = []
    raws = [dict(GOOD, timestamp=str(100 + k)) for k in range(23)] + [{"bad": 1}]
    ingest(recs(raws), store, batch_size=5, progress=seen.append)
    assert sum(seen) == 24 and len(seen) >= 5


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown ingest kind"):
        ingest([], store, kind="orders")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        ingest([], store, batch_size=0)
    assert ingest([], store) == IngestReport()


class FailingStore:
    """Stands in for a store whose database goes away mid-ingest."""

    def __init__(self) -> None:
        self.calls = 0

    def add_events(self, events: Any) -> AddResult:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("database went away")
        return AddResult(len(events), 0)


@pytest.mark.parametrize("background", [True, False])
def test_store_errors_reach_the_caller(background: bool) -> None:
    raws = [dict(GOOD, timestamp=str(100 + k)) for k in range(50)]
    with pytest.raises(ConnectionError, match="went away"):
        ingest(recs(raws), FailingStore(), batch_size=5, background_writes=background)  # type: ignore[arg-type]


def test_reader_errors_win_over_pending_writes() -> None:
    def stream() -> Iterator[tuple[str, int, dict[str, str]]]:
        for k in range(12):
            yield ("f", k + 1, dict(GOOD, timestamp=str(100 + k)))
        raise OSError("disk read failed")

    with pytest.raises(OSError, match="disk read failed"):
        ingest(stream(), FailingStore(), batch_size=5)  # type: ignore[arg-type]


# --- the invariant, with hypothesis ----------------------------------------------------------
valid_raw = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["u1", "u2", "ü3"]),
        "item_id": st.sampled_from(["i1", "i2"]),
        "event_type": st.sampled_from(["view", "click", "Purchase", "carts"]),
        "timestamp": st.sampled_from(["1", "2", "1970-01-01T00:00:01Z", 3]),
    },
    optional={"event_id": st.sampled_from(["e1", "e2", ""])},
)
invalid_raw = st.one_of(
    st.fixed_dictionaries({"user_id": st.just(""), "event_type": st.just("view")}),
    st.fixed_dictionaries(
        {
            "user_id": st.just("u1"),
            "item_id": st.just("i1"),
            "event_type": st.just("x"),
            "timestamp": st.just("1"),
        }
    ),
    st.just("not a mapping"),
)
reader_error = st.builds(lambda r: RecordError("f", r, "", "wrong_field_count"), st.integers(1, 9))
stream_items = st.lists(st.one_of(valid_raw, invalid_raw, reader_error), max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=stream_items, batch_size=st.integers(1, 7), background=st.booleans())
def test_rows_in_equals_accepted_rejected_duplicates(
    items: list[Any], batch_size: int, background: bool
) -> None:
    stream = [x if isinstance(x, RecordError) else ("f", k + 1, x) for k, x in enumerate(items)]
    keys, bad = set(), 0
    for k, x in enumerate(items):  # the known answer, computed independently of the engine
        if isinstance(x, RecordError):
            bad += 1
            continue
        try:
            keys.add(parse_event(x, "f", k + 1).dedup_key())
        except RecordError:
            bad += 1
    with open_store("sqlite:///:memory:") as store:
        out = io.StringIO()
        first = ingest(
            stream, store, rejects=out, batch_size=batch_size, background_writes=background
        )
        assert first.rows == len(items)
        assert (first.accepted, first.rejected) == (len(keys), bad)
        assert first.duplicates == len(items) - bad - len(keys)
        assert sum(first.reasons.values()) == bad == len(out.getvalue().splitlines())
        assert store.count_events() == len(keys)
        second = ingest(stream, store, batch_size=batch_size)
        assert (second.accepted, second.rejected, second.duplicates) == (0, bad, len(items) - bad)
        assert store.count_events() == len(keys)


def test_reports_merge() -> None:
    a = IngestReport(3, 1, 2, {"missing": 1})
    b = IngestReport(1, 2, 0, {"missing": 1, "bad_id": 1})
    assert a.merge(b).as_dict() == {
        "accepted": 4,
        "rejected": 3,
        "duplicates": 2,
        "reasons": {"bad_id": 1, "missing": 2},
    }
    assert a.merge(b).rows == 9 and a.reasons == {"missing": 1}
