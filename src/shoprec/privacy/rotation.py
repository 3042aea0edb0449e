"""Key rotation for stored pseudonyms (`shoprec rekey-users`).

After a new key is appended to the key ring (see `shoprec.data.pseudonymize.KeyRing`), every
stored user id is moved onto it without any raw id: ``new = HMAC(new_key, old)``. Events and
profiles are rewritten under the new id, then the old id is deleted; ids already under the
current key are left alone, so an interrupted run can simply be repeated. Online state is
short-lived and keyed by the old pseudonym: it is forgotten rather than moved. Artifacts keep
the old ids until the next training (retrain after a rotation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from shoprec.data.pseudonymize import KeyRing
from shoprec.storage.base import Store
from shoprec.types import Event, User


def _none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def rekey_store(store: Store, keyring: KeyRing, online_state: Any = None) -> dict[str, int]:
    """Move every stored user id that is not under the current key onto it.

    Returns
    -------
    dict: users moved, events rewritten, user records rewritten.
    """
    events = store.events_frame()
    users = store.users_frame()
    ids = set(events["user_id"].astype(str)) | set(users["user_id"].astype(str))
    mapping = {old: new for old, new in keyring.rekey_map(sorted(ids)).items() if old != new}
    prev = keyring.key_ids[-2] + "." if len(keyring.key_ids) > 1 else None

    def rekeyed(v: Any, domain: str) -> Any:
        v = _none(v)
        return keyring.rekey(v, domain) if prev and isinstance(v, str) and v.startswith(prev) else v

    moved_events = moved_users = 0
    for old, new in mapping.items():
        ev = events[events["user_id"].astype(str) == old]
        batch = [
            Event(
                new,
                _none(r.item_id),
                r.event_type,
                float(r.timestamp),
                _none(r.value),
                rekeyed(r.session_id, "session"),
                r.context if isinstance(r.context, Mapping) else None,
                rekeyed(r.event_id, "event"),
            )
            for r in ev.itertuples(index=False)
        ]
        rows = users[users["user_id"].astype(str) == old]
        recs = [User(new, a if isinstance(a, dict) else {}) for a in rows["attributes"]]
        # a raw event id keeps its dedup key, so the old row must go before the new one lands
        raw_ids = any(
            e.event_id and not (prev and e.event_id.startswith(keyring.current_id + "."))
            for e in batch
        )
        if raw_ids:
            store.delete_user(old)
        if batch:
            store.add_events(batch)
        if recs:
            store.upsert_users(recs)
        if not raw_ids:
            store.delete_user(old)
        if online_state is not None:
            online_state.forget(old)
        moved_events += len(batch)
        moved_users += len(recs)
    return {"users": len(mapping), "events": moved_events, "user_records": moved_users}


def moved_ids(frame: pd.DataFrame, keyring: KeyRing) -> int:
    """How many distinct ids in `frame` are not under the current key (still to move)."""
    prefix = keyring.current_id + "."
    return int(sum(not str(u).startswith(prefix) for u in frame["user_id"].unique()))
