import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoprec.data.schema import parse_event, parse_item, parse_timestamp, parse_user
from shoprec.types import RecordError


def ev(**kw):
    base = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": "1767225600"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "raw, field, reason",
    [
        (ev(user_id=""), "user_id", "missing"),
        (ev(item_id=None), "item_id", "missing"),
        (ev(event_type="teleport"), "event_type", "unknown_event_type"),
        (ev(timestamp="yesterday"), "timestamp", "bad_timestamp"),
        (ev(timestamp=-5), "timestamp", "timestamp_out_of_range"),
        (ev(event_type="rating"), "value", "missing"),
        (ev(event_type="rating", value="11"), "value", "out_of_range"),
        (ev(value="abc"), "value", "not_a_number"),
        (ev(context="[1,2]"), "context", "not_an_object"),
        (ev(user_id="a\nb"), "user_id", "bad_id"),
    ],
)
def test_bad_event_names_field_and_reason(raw, field, reason):
    with pytest.raises(RecordError) as info:
        parse_event(raw, "events.csv", 7)
    err = info.value
    assert (err.source, err.record, err.field, err.reason) == ("events.csv", 7, field, reason)
    assert "events.csv:7" in str(err) and field in str(err)


def test_event_normalises_aliases_and_timestamps():
    e = parse_event(ev(event_type="carts", timestamp="2026-01-01T00:00:00Z", item_id=42))
    assert e.event_type == "add_to_cart" and e.item_id == "42"
    assert e.timestamp == 1767225600.0
    # epoch milliseconds are recognised
    assert parse_event(ev(timestamp=1767225600123)).timestamp == pytest.approx(1767225600.123)
    # naive ISO means UTC
    assert parse_timestamp("2026-01-01T00:00:00", "s", 1) == 1767225600.0


def test_search_may_have_no_item():
    e = parse_event(ev(event_type="search", item_id="", context='{"query": "red shoes"}'))
    assert e.item_id is None and e.context == {"query": "red shoes"}


def test_dedup_key_prefers_event_id():
    a = parse_event(ev(event_id="x"))
    b = parse_event(ev(event_id="x", timestamp="1767225700"))
    c = parse_event(ev())
    assert a.dedup_key() == b.dedup_key() != c.dedup_key()


def test_item_validation():
    it = parse_item(
        {"item_id": "p", "price": "9.5", "stock": "3", "active": "false", "currency": "eur"}
    )
    assert (it.price, it.stock, it.active, it.currency) == (9.5, 3, False, "EUR")
    assert not it.available
    for raw, field in [
        ({"item_id": "p", "price": "-1"}, "price"),
        ({"item_id": "p", "stock": "1.5"}, "stock"),
        ({"item_id": "p", "active": "maybe"}, "active"),
        ({"title": "x"}, "item_id"),
    ]:
        with pytest.raises(RecordError) as info:
            parse_item(raw, "items.csv", 3)
        assert info.value.field == field


def test_user_extra_columns_become_attributes():
    u = parse_user({"user_id": "u", "age_band": "25-34", "country": ""})
    assert u.attributes == {"age_band": "25-34"}


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "user_id",
                "item_id",
                "event_type",
                "timestamp",
                "value",
                "context",
                "event_id",
                "session_id",
            ]
        ),
        st.one_of(
            st.none(), st.text(max_size=12), st.integers(), st.floats(allow_nan=True), st.booleans()
        ),
    )
)
def test_parse_event_never_raises_anything_but_record_error(raw):
    try:
        e = parse_event(raw, "fuzz", 1)
    except RecordError as err:
        assert err.reason
    else:
        assert e.user_id and math.isfinite(e.timestamp)


@given(st.text(max_size=300))
def test_parse_id_fast_path_agrees_with_the_rules(s):
    from shoprec.data.schema import MAX_ID_LENGTH, parse_id

    try:
        got = parse_id({"user_id": s}, "user_id", "t", 1)
    except RecordError as err:
        stripped = s.strip()
        assert (
            not stripped or len(stripped) > MAX_ID_LENGTH or any(c in stripped for c in "\x00\n\r")
        ), err
    else:
        assert got == s.strip() and got and len(got) <= MAX_ID_LENGTH
        assert not any(c in got for c in "\x00\n\r")
