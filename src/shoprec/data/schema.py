"""Validation of raw records into `Event`, `Item` and `User`.

Every failure raises `RecordError` naming the source, record number, field and reason, so a
shop sees exactly what was rejected. Readers hand raw dicts (strings from CSV, typed values
from JSON) to these functions; the HTTP service uses the same ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shoprec.types import EVENT_TYPES, Event, Item, RecordError, User

EVENT_ALIASES: dict[str, str] = {
    "clicks": "click",
    "carts": "add_to_cart",
    "cart": "add_to_cart",
    "addtocart": "add_to_cart",
    "add-to-cart": "add_to_cart",
    "orders": "purchase",
    "order": "purchase",
    "transaction": "purchase",
    "buy": "purchase",
    "views": "view",
    "pageview": "view",
    "rate": "rating",
}

MIN_TIMESTAMP = 0.0  # 1970-01-01
MAX_TIMESTAMP = 4102444800.0  # 2100-01-01: later stamps are almost surely milliseconds or junk
MAX_ID_LENGTH = 256


def _empty(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, str) and v.strip() == "")
        or (isinstance(v, float) and math.isnan(v))
    )


def parse_id(
    raw: Mapping[str, Any], name: str, source: str, record: int, required: bool = True
) -> str | None:
    v = raw.get(name)
    # fast path: the common case, a clean non-empty string id (ingest spends most time here)
    if (
        type(v) is str
        and v
        and len(v) <= MAX_ID_LENGTH
        and v.isprintable()
        and not (v[0].isspace() or v[-1].isspace())
    ):
        return v
    if _empty(v):
        if required:
            raise RecordError(source, record, name, "missing")
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise RecordError(
            source, record, name, "bad_id", f"expected a string or integer, got {v!r}"
        )
    s = str(v).strip()
    if len(s) > MAX_ID_LENGTH:
        raise RecordError(source, record, name, "bad_id", f"longer than {MAX_ID_LENGTH} characters")
    if any(c in s for c in "\x00\n\r"):
        raise RecordError(source, record, name, "bad_id", "contains control characters")
    return s


def parse_timestamp(v: Any, source: str, record: int, name: str = "timestamp") -> float:
    """ISO 8601 (naive means UTC) or epoch seconds; epoch milliseconds are recognised."""
    if _empty(v):
        raise RecordError(source, record, name, "missing")
    ts: float
    if isinstance(v, bool):
        raise RecordError(source, record, name, "bad_timestamp", f"{v!r}")
    if isinstance(v, int | float):
        ts = float(v)
    else:
        s = str(v).strip()
        try:
            ts = float(s)
        except ValueError:
            try:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
            except ValueError:
                raise RecordError(
                    source,
                    record,
                    name,
                    "bad_timestamp",
                    f"not ISO 8601 or epoch seconds: {s[:40]!r}",
                ) from None
            if dt.tzinfo is None:
                from datetime import UTC

                dt = dt.replace(tzinfo=UTC)
            ts = dt.timestamp()
    if not math.isfinite(ts):
        raise RecordError(source, record, name, "bad_timestamp", f"{v!r}")
    if ts > MAX_TIMESTAMP and ts / 1000.0 <= MAX_TIMESTAMP:
        ts = ts / 1000.0  # epoch milliseconds
    if not MIN_TIMESTAMP <= ts <= MAX_TIMESTAMP:
        raise RecordError(source, record, name, "timestamp_out_of_range", f"{v!r}")
    return ts


def parse_float(
    raw: Mapping[str, Any],
    name: str,
    source: str,
    record: int,
    lo: float = -math.inf,
    hi: float = math.inf,
) -> float | None:
    v = raw.get(name)
    if _empty(v):
        return None
    if isinstance(v, bool):
        raise RecordError(source, record, name, "not_a_number", f"{v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise RecordError(source, record, name, "not_a_number", f"{str(v)[:40]!r}") from None
    if not math.isfinite(f) or not lo <= f <= hi:
        raise RecordError(source, record, name, "out_of_range", f"{f} not in [{lo}, {hi}]")
    return f


def _parse_mapping(raw: Mapping[str, Any], name: str, source: str, record: int) -> dict | None:
    v = raw.get(name)
    if _empty(v):
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            raise RecordError(source, record, name, "bad_json", "expected a JSON object") from None
    if not isinstance(v, dict):
        raise RecordError(source, record, name, "not_an_object", f"got {type(v).__name__}")
    return v


def normalise_event_type(v: Any) -> str | None:
    if _empty(v):
        return None
    s = str(v).strip().lower().replace(" ", "_")
    s = EVENT_ALIASES.get(s, s)
    return s if s in EVENT_TYPES else None


def parse_event(raw: Mapping[str, Any], source: str = "", record: int = 0) -> Event:
    """Validate one raw event. Raises `RecordError`."""
    if not isinstance(raw, Mapping):
        raise RecordError(source, record, "", "not_an_object", f"got {type(raw).__name__}")
    user_id = parse_id(raw, "user_id", source, record)
    et_raw = raw.get("event_type")
    if _empty(et_raw):
        raise RecordError(source, record, "event_type", "missing")
    event_type = normalise_event_type(et_raw)
    if event_type is None:
        raise RecordError(
            source,
            record,
            "event_type",
            "unknown_event_type",
            f"{str(et_raw)[:40]!r}; expected one of {', '.join(EVENT_TYPES)}",
        )
    item_id = parse_id(raw, "item_id", source, record, required=event_type != "search")
    timestamp = parse_timestamp(raw.get("timestamp"), source, record)
    if event_type == "rating":
        value = parse_float(raw, "value", source, record, lo=0.0, hi=10.0)
        if value is None:
            raise RecordError(source, record, "value", "missing", "a rating needs a value")
    else:
        value = parse_float(raw, "value", source, record, lo=0.0, hi=1e9)
    session_id = parse_id(raw, "session_id", source, record, required=False)
    event_id = parse_id(raw, "event_id", source, record, required=False)
    context = _parse_mapping(raw, "context", source, record)
    return Event(user_id, item_id, event_type, timestamp, value, session_id, context, event_id)  # type: ignore[arg-type]


def parse_item(raw: Mapping[str, Any], source: str = "", record: int = 0) -> Item:
    """Validate one catalog record. Raises `RecordError`."""
    if not isinstance(raw, Mapping):
        raise RecordError(source, record, "", "not_an_object", f"got {type(raw).__name__}")
    item_id = parse_id(raw, "item_id", source, record)
    price = parse_float(raw, "price", source, record, lo=0.0, hi=1e9)
    stock_f = parse_float(raw, "stock", source, record, lo=0.0, hi=1e12)
    if stock_f is not None and not float(stock_f).is_integer():
        raise RecordError(source, record, "stock", "not_an_integer", f"{stock_f}")
    created = raw.get("created_at")
    created_at = None if _empty(created) else parse_timestamp(created, source, record, "created_at")
    active_raw = raw.get("active")
    if _empty(active_raw):
        active = True
    elif isinstance(active_raw, bool):
        active = active_raw
    elif str(active_raw).strip().lower() in ("1", "true", "yes", "y", "t"):
        active = True
    elif str(active_raw).strip().lower() in ("0", "false", "no", "n", "f"):
        active = False
    else:
        raise RecordError(source, record, "active", "not_a_boolean", f"{active_raw!r}")
    attributes = _parse_mapping(raw, "attributes", source, record) or {}
    texts = {}
    for name in ("title", "description", "category", "brand", "currency", "image"):
        v = raw.get(name)
        texts[name] = "" if _empty(v) else str(v).strip()
    if texts["currency"] and (len(texts["currency"]) != 3 or not texts["currency"].isalpha()):
        raise RecordError(source, record, "currency", "bad_currency", "expected an ISO 4217 code")
    return Item(
        item_id=item_id,  # type: ignore[arg-type]
        price=price,
        stock=None if stock_f is None else int(stock_f),
        created_at=created_at,
        active=active,
        attributes=attributes,
        currency=texts["currency"].upper(),
        **{k: texts[k] for k in ("title", "description", "category", "brand", "image")},
    )


def parse_user(raw: Mapping[str, Any], source: str = "", record: int = 0) -> User:
    """Validate one user record: an id and any other fields as attributes."""
    if not isinstance(raw, Mapping):
        raise RecordError(source, record, "", "not_an_object", f"got {type(raw).__name__}")
    user_id = parse_id(raw, "user_id", source, record)
    attrs = _parse_mapping(raw, "attributes", source, record) or {}
    for k, v in raw.items():
        if k not in ("user_id", "attributes") and not _empty(v):
            attrs[k] = v
    return User(user_id, attrs)  # type: ignore[arg-type]
