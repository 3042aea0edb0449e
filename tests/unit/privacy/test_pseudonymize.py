"""Pseudonyms (HMAC key ring with rotation) and the PII policy."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.data.pseudonymize import (
    KeyRing,
    Pseudonymizer,
    apply_pii_policy,
    find_pii,
    is_pseudonym,
    pii_in_text,
)
from shoprec.types import Event, RecordError, User

SECRET1 = "s3cret-key-number-one"
SECRET2 = "another-secret-key-two"


def ring() -> KeyRing:
    return KeyRing([("k1", SECRET1)])


def test_pseudonym_is_truncated_hmac_sha256_with_key_id_prefix():
    mac = hmac.new(SECRET1.encode(), b"user\x1falice", hashlib.sha256).hexdigest()
    assert ring().pseudonym("alice") == "k1." + mac[:32]
    assert is_pseudonym(ring().pseudonym("alice"))
    assert not is_pseudonym("alice")


def test_pseudonyms_are_stable_distinct_and_depend_on_the_secret():
    r = ring()
    assert r.pseudonym("alice") == r.pseudonym("alice")
    assert r.pseudonym("alice") != r.pseudonym("bob")
    other = KeyRing([("k1", "a-completely-different-secret")])
    assert other.pseudonym("alice") != r.pseudonym("alice")
    # sessions and users live in separate domains: same string, different pseudonym
    assert r.pseudonym("x", "session") != r.pseudonym("x", "user")


def test_rotation_rekeys_stored_pseudonyms_without_raw_ids():
    old = ring()
    new = old.rotated("k2", SECRET2)
    stored = [old.pseudonym(u) for u in ("alice", "bob")]
    mapping = new.rekey_map(stored)
    assert mapping == {
        old.pseudonym("alice"): new.pseudonym("alice"),
        old.pseudonym("bob"): new.pseudonym("bob"),
    }
    assert all(p.startswith("k2.") for p in mapping.values())
    # re-running a half-done migration leaves current ids alone
    again = new.rekey_map(list(mapping.values()))
    assert again == {p: p for p in mapping.values()}
    with pytest.raises(ValueError):
        old.rekey(stored[0])  # a single-key ring cannot rekey


def test_keyring_validation_and_parsing(tmp_path):
    with pytest.raises(ValueError, match="16 bytes"):
        KeyRing([("k1", "short")])
    with pytest.raises(ValueError, match="key id"):
        KeyRing([("K 1", SECRET1)])
    with pytest.raises(ValueError, match="duplicate"):
        KeyRing([("k1", SECRET1), ("k1", SECRET2)])
    r = KeyRing.from_string(f"k1:{SECRET1},k2:{SECRET2}")
    assert r.key_ids == ["k1", "k2"] and r.current_id == "k2"
    f = tmp_path / "keys"
    f.write_text(f"# oldest first\nk1 {SECRET1}\n\nk2 {SECRET2}\n")
    assert KeyRing.from_file(f).pseudonym("alice") == r.pseudonym("alice")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail me at jane.doe+shop@example.co.uk", "email"),
        ("+44 20 7946 0958", "phone"),
        ("(555) 123-4567", "phone"),
        ("06 12 34 56 78", "phone"),
        ("client 192.168.10.20", "ip"),
        ("fe80::1ff:fe23:4567:890a", "ip"),
        ("12 Baker Street, London", "address"),
        ("Hauptstraße 5, Berlin", "address"),
    ],
)
def test_pii_patterns_are_found(text, kind):
    assert kind in pii_in_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15 10:30:00",
        "red shoes size 42",
        "price 12.99",
        "order 12345678",
        "sku 123-456",
        "https://shop.example/p/123",
        "Serum > Skin > Beauty",
    ],
)
def test_ordinary_values_are_not_pii(text):
    assert pii_in_text(text) == []


def test_find_pii_by_field_name_and_value_names_paths_not_values():
    ctx = {
        "page": "home",
        "customer": {"first_name": "Jane", "note": "jane@x.org"},
        "tags": ["ok", "10.0.0.1"],
    }
    found = {(f.path, f.kind) for f in find_pii(ctx, "context")}
    assert found == {
        ("context.customer.first_name", "name"),
        ("context.customer.note", "email"),
        ("context.tags[1]", "ip"),
    }


def test_drop_policy_removes_only_offending_fields():
    ctx = {"page": "home", "email": "jane@x.org", "tags": ["ok", "10.0.0.1"]}
    cleaned, findings = apply_pii_policy(ctx, "drop", "context")
    assert cleaned == {"page": "home", "tags": ["ok"]}
    assert len(findings) == 2


def test_reject_policy_raises_record_error_without_the_value():
    with pytest.raises(RecordError) as exc:
        apply_pii_policy({"phone": "+33 6 12 34 56 78"}, "reject", "context", "api", 7)
    assert exc.value.reason == "pii" and exc.value.field == "context.phone"
    assert "12 34" not in str(exc.value)
    with pytest.raises(ValueError):
        apply_pii_policy({}, "keep", "context")


def test_pseudonymizer_event_user_and_frame():
    p = Pseudonymizer(ring(), "drop")
    e = Event(
        "alice@example.com",
        "i1",
        "view",
        10.0,
        session_id="sess-alice",
        context={"ip": "1.2.3.4", "page": "pdp"},
        event_id="alice-1",
    )
    out = p.event(e)
    assert out.user_id == ring().pseudonym("alice@example.com")
    assert out.context == {"page": "pdp"}
    assert "alice" not in repr(out)
    assert p.dropped == {"ip": 1}
    u = p.user(User("alice", {"name": "Alice A.", "age_band": "30-39"}))
    assert u == User(ring().pseudonym("alice"), {"age_band": "30-39"})
    frame = pd.DataFrame(
        {
            "user_id": ["alice", "bob", "alice"],
            "item_id": ["a", "b", "c"],
            "timestamp": [1.0, 2.0, 3.0],
            "session_id": [None, "s", "s"],
            "event_id": [None, None, "x"],
            "context": [None, {"email": "b@b.io"}, {"k": 1}],
        }
    )
    f2 = p.events_frame(frame)
    a = ring().pseudonym("alice")
    assert list(f2["user_id"]) == [a, ring().pseudonym("bob"), a]
    assert list(f2["context"]) == [None, {}, {"k": 1}]
    assert pd.isna(f2["session_id"][0]) and is_pseudonym(f2["session_id"][1])


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_id_maps_to_a_well_formed_pseudonym(raw):
    assert is_pseudonym(ring().pseudonym(raw))


def test_rekey_store_moves_every_id_onto_the_new_key(tmp_path):
    from shoprec.privacy.rotation import rekey_store
    from shoprec.storage import open_store

    old = ring()
    new = old.rotated("k2", SECRET2)
    p = Pseudonymizer(old)
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.add_events(
            [
                p.event(Event("alice", "i1", "view", 1.0, event_id="e1")),
                p.event(Event("alice", "i2", "view", 2.0, session_id="s")),
                p.event(Event("bob", "i1", "view", 3.0)),
            ]
        )
        store.upsert_users([p.user(User("alice", {"age_band": "30-39"}))])
        moved = rekey_store(store, new)
        assert moved == {"users": 2, "events": 3, "user_records": 1}
        ev = store.events_frame()
        assert set(ev["user_id"]) == {new.pseudonym("alice"), new.pseudonym("bob")}
        assert new.pseudonym("e1", "event") in set(ev["event_id"])
        assert list(store.users_frame()["user_id"]) == [new.pseudonym("alice")]
        assert rekey_store(store, new)["users"] == 0  # idempotent
        assert store.count_events() == 3
