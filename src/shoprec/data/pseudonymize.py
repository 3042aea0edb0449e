"""Pseudonymous user ids and a PII policy, applied at the boundary before anything is stored.

Pseudonyms
----------
A user id is replaced by a keyed hash, HMAC-SHA256 with a secret the shop keeps outside the
data (a key file or the service's settings), truncated to 128 bits and written as
``"<key_id>.<32 hex digits>"``. Without the secret nobody can recompute a pseudonym from an
id, so a leaked database, log or artifact does not name anyone; with it, the shop's own systems
map the same shopper to the same pseudonym every time, so recommendations still work.

Rotation (documented scheme, `KeyRing`)
---------------------------------------
Keys form a ring, oldest first: ``k1, k2, ..., kn``. The pseudonym under the ring is a chain,

    d0 = raw id,   dj = "<kid_j>." + hex(HMAC(k_j, d_{j-1}))[:32],   pseudonym = dn

so rotating to a new key ``k_{n+1}`` needs no raw ids: every stored pseudonym ``dn`` becomes
``HMAC(k_{n+1}, dn)`` (`KeyRing.rekey`, `rekey_map`; `shoprec rekey-users` rewrites a store).
The key id prefix says which generation a stored id belongs to, so a half-done migration can
be resumed. A leaked *old* key alone no longer links raw ids to current pseudonyms (the newest
link needs the newest key); old keys stay in the ring only to map raw ids forward.

PII
---
Names, e-mail addresses, phone numbers, street addresses and IP addresses in an event's
``context`` or a user's attributes are found by field name (``email``, ``phone``, ``name``...)
and by value patterns (e-mail, phone, IPv4/IPv6, street address). Policy ``drop`` removes the
offending fields and keeps the record; ``reject`` raises `RecordError` (reason ``"pii"``). The
finding names the field and the kind, never the value. Personal names inside free text cannot
be told from product words and are only caught by field name.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from shoprec.types import Event, RecordError, User

PII_POLICIES: tuple[str, ...] = ("drop", "reject")
MIN_SECRET_BYTES = 16
_HEX = 32  # 128-bit pseudonyms
PSEUDONYM_RE = re.compile(r"^[a-z0-9]{1,16}\.[0-9a-f]{32}$")
_KEY_ID_RE = re.compile(r"^[a-z0-9]{1,16}$")


@dataclass(frozen=True)
class PrivacyConfig:
    """The `[privacy]` section."""

    keys_file: str = ""  # lines "key_id secret", oldest first; "" = no pseudonymisation
    pii_policy: str = "drop"  # drop | reject
    retention_days: float = 0.0  # events older than this are purged; 0 keeps them forever
    erasure_log: str = "erasures.jsonl"  # append-only audit log and erasure ledger


class KeyRing:
    """HMAC keys, oldest first; the last one is current.

    Parameters
    ----------
    keys : sequence of (key_id, secret)
        ``key_id`` is 1-16 lowercase letters or digits; ``secret`` at least 16 bytes.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes | str]]):
        if not keys:
            raise ValueError("KeyRing: at least one key is needed")
        self._keys: list[tuple[str, bytes]] = []
        for kid, secret in keys:
            raw = secret.encode() if isinstance(secret, str) else bytes(secret)
            if not _KEY_ID_RE.match(kid):
                raise ValueError(f"KeyRing: bad key id {kid!r} (1-16 of a-z, 0-9)")
            if len(raw) < MIN_SECRET_BYTES:
                raise ValueError(f"KeyRing: secret of key {kid!r} is shorter than 16 bytes")
            if any(kid == k for k, _ in self._keys):
                raise ValueError(f"KeyRing: duplicate key id {kid!r}")
            self._keys.append((kid, raw))

    @classmethod
    def from_string(cls, spec: str) -> KeyRing:
        """Parse ``"k1:secret1,k2:secret2"`` (oldest first), e.g. from an environment variable."""
        pairs = []
        for part in spec.split(","):
            kid, sep, secret = part.strip().partition(":")
            if not sep:
                raise ValueError("KeyRing.from_string: expected 'key_id:secret' entries")
            pairs.append((kid, secret))
        return cls(pairs)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        """Read lines ``key_id secret`` (oldest first; ``#`` comments and blanks ignored)."""
        pairs = []
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kid, _, secret = line.partition(" ")
            pairs.append((kid, secret.strip()))
        return cls(pairs)

    @property
    def key_ids(self) -> list[str]:
        return [k for k, _ in self._keys]

    @property
    def current_id(self) -> str:
        return self._keys[-1][0]

    def rotated(self, key_id: str, secret: bytes | str) -> KeyRing:
        """A new ring with `key_id` appended as the current key."""
        return KeyRing([*self._keys, (key_id, secret)])

    @staticmethod
    def _link(kid: str, secret: bytes, value: str, domain: str) -> str:
        mac = hmac.new(secret, (domain + "\x1f" + value).encode(), hashlib.sha256).hexdigest()
        return f"{kid}.{mac[:_HEX]}"

    def pseudonym(self, raw_id: str, domain: str = "user") -> str:
        """The current pseudonym of `raw_id` (the whole chain of keys)."""
        value = str(raw_id)
        for kid, secret in self._keys:
            value = self._link(kid, secret, value, domain)
        return value

    def rekey(self, previous: str, domain: str = "user") -> str:
        """Move a pseudonym made under all keys but the newest onto the newest key."""
        if len(self._keys) < 2:
            raise ValueError("KeyRing.rekey: the ring has a single key; add one first")
        prev_kid = self._keys[-2][0]
        if not previous.startswith(prev_kid + "."):
            raise ValueError(f"KeyRing.rekey: pseudonym is not under key {prev_kid!r}")
        kid, secret = self._keys[-1]
        return self._link(kid, secret, previous, domain)

    def rekey_map(self, previous: Iterable[str], domain: str = "user") -> dict[str, str]:
        """``{old pseudonym: new pseudonym}`` for stored ids; ids already current map to
        themselves, so the migration can be re-run after an interruption."""
        out: dict[str, str] = {}
        cur = self.current_id + "."
        for p in previous:
            out[p] = p if p.startswith(cur) else self.rekey(p, domain)
        return out


def is_pseudonym(value: str) -> bool:
    """True when `value` has the shape of a pseudonym (``kid.<32 hex>``)."""
    return bool(PSEUDONYM_RE.match(value))


# ------------------------------------------------------------------------------- PII
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_IPV6_TOKEN = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")
_PHONE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,5}(?![\w.])|(?<!\w)\+\d{8,15}(?!\w)"
)
_DATETIME = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}$")
_STREET_WORDS = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"square|sq|terrace|crescent|close|highway|hwy|parkway|pkwy"
)
_STREET = re.compile(
    rf"\b\d{{1,5}}[a-z]?\s+(?:[A-Za-z][A-Za-z'-]*\s+){{1,4}}(?:{_STREET_WORDS})\b\.?"
    r"|\b[A-Za-zÀ-ÿ-]+(?:straße|strasse|str\.|weg|gasse|platz)\s*\d{1,5}[a-z]?\b"
    r"|\b\d{1,5},?\s+(?:rue|avenue|boulevard|chemin|allée|impasse|via|viale|calle|avenida)\s+\w+",
    re.IGNORECASE,
)
_PII_KEYS: dict[str, str] = {
    **dict.fromkeys(
        (
            "name",
            "full_name",
            "fullname",
            "first_name",
            "firstname",
            "last_name",
            "lastname",
            "surname",
            "given_name",
            "family_name",
            "middle_name",
            "customer_name",
            "display_name",
            "username",
            "user_name",
        ),
        "name",
    ),
    **dict.fromkeys(("email", "e_mail", "mail", "email_address"), "email"),
    **dict.fromkeys(
        ("phone", "phone_number", "telephone", "tel", "mobile", "cell", "fax"), "phone"
    ),
    **dict.fromkeys(
        (
            "address",
            "street",
            "street_address",
            "address_line1",
            "address_line2",
            "address1",
            "address2",
            "postcode",
            "postal_code",
            "zip",
            "zipcode",
            "zip_code",
            "shipping_address",
            "billing_address",
        ),
        "address",
    ),
    **dict.fromkeys(
        ("ip", "ip_address", "ipaddress", "remote_addr", "client_ip", "x_forwarded_for"), "ip"
    ),
}


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def pii_in_text(text: str) -> list[str]:
    """Kinds of PII found in one string value: "email", "ip", "phone", "address"."""
    kinds: list[str] = []
    if _EMAIL.search(text):
        kinds.append("email")
    if _IPV4.search(text) or any(_is_ipv6(t) for t in _IPV6_TOKEN.findall(text)):
        kinds.append("ip")
    for m in _PHONE.finditer(_DATETIME.sub(" ", text)):
        s = m.group(0).strip()
        if 8 <= _digits(s) <= 15 and not _DATE.match(s) and not _IPV4.fullmatch(s):
            kinds.append("phone")
            break
    if _STREET.search(text):
        kinds.append("address")
    return kinds


def _is_ipv6(token: str) -> bool:
    try:
        return isinstance(
            ipaddress.ip_address(token.strip(".:") if "::" not in token else token),
            ipaddress.IPv6Address,
        )
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """Where PII was found (``context.customer.email``) and what kind; never the value."""

    path: str
    kind: str


def find_pii(value: Any, path: str = "") -> list[PiiFinding]:
    """Every PII finding in a nested mapping/list of values."""
    found: list[PiiFinding] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            key_kind = _PII_KEYS.get(_norm_key(k))
            if key_kind is not None and v not in (None, ""):
                found.append(PiiFinding(sub, key_kind))
            else:
                found.extend(find_pii(v, sub))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found.extend(find_pii(v, f"{path}[{i}]"))
    elif isinstance(value, str):
        found.extend(PiiFinding(path, kind) for kind in pii_in_text(value))
    return found


def _drop(value: Any, bad: set[str], path: str = "") -> Any:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if sub not in bad:
                out[k] = _drop(v, bad, sub)
        return out
    if isinstance(value, list | tuple):
        kept = [
            _drop(v, bad, f"{path}[{i}]") for i, v in enumerate(value) if f"{path}[{i}]" not in bad
        ]
        return kept
    return value


def apply_pii_policy(
    mapping: Mapping[str, Any] | None,
    policy: str,
    field: str,
    source: str = "",
    record: int = 0,
) -> tuple[dict[str, Any] | None, list[PiiFinding]]:
    """Clean one mapping under `policy`; returns the cleaned mapping and the findings.

    Raises
    ------
    RecordError
        Reason ``"pii"`` under policy ``reject`` when anything is found.
    """
    if policy not in PII_POLICIES:
        raise ValueError(f"pii policy must be one of {PII_POLICIES}, got {policy!r}")
    if not mapping:
        return (dict(mapping) if mapping is not None else None), []
    findings = find_pii(mapping, field)
    if not findings:
        return dict(mapping), []
    if policy == "reject":
        f = findings[0]
        raise RecordError(source, record, f.path, "pii", f"{f.kind} not accepted (policy reject)")
    bad = {f.path for f in findings}
    return _drop(mapping, bad, field), findings


class Pseudonymizer:
    """The boundary: pseudonymous ids and the PII policy for events, users and frames.

    Parameters
    ----------
    keyring : KeyRing or None
        None keeps ids as sent (the PII policy still applies).
    pii_policy : {"drop", "reject"}
    """

    def __init__(self, keyring: KeyRing | None, pii_policy: str = "drop"):
        if pii_policy not in PII_POLICIES:
            raise ValueError(f"pii policy must be one of {PII_POLICIES}, got {pii_policy!r}")
        self.keyring = keyring
        self.pii_policy = pii_policy
        self.dropped: dict[str, int] = {}  # PII kind -> fields dropped so far (no values)

    def _hash(self, value: str, domain: str) -> str:
        return value if self.keyring is None else self.keyring.pseudonym(value, domain)

    def user_id(self, raw_id: str) -> str:
        """Pseudonym of a raw user id."""
        return self._hash(raw_id, "user")

    def session_id(self, raw: str | None) -> str | None:
        return None if raw is None else self._hash(raw, "session")

    def _note(self, findings: list[PiiFinding]) -> None:
        for f in findings:
            self.dropped[f.kind] = self.dropped.get(f.kind, 0) + 1

    def event(self, event: Event, source: str = "", record: int = 0) -> Event:
        """A copy of `event` with pseudonymous user, session and event ids and clean context.

        The event id is hashed too: shops often build it from the user id.
        """
        context, findings = apply_pii_policy(
            event.context, self.pii_policy, "context", source, record
        )
        self._note(findings)
        return replace(
            event,
            user_id=self.user_id(event.user_id),
            session_id=self.session_id(event.session_id),
            event_id=None if event.event_id is None else self._hash(event.event_id, "event"),
            context=context,
        )

    def user(self, user: User, source: str = "", record: int = 0) -> User:
        """A copy of `user` with a pseudonymous id and attributes cleaned of PII."""
        attrs, findings = apply_pii_policy(
            user.attributes, self.pii_policy, "attributes", source, record
        )
        self._note(findings)
        return User(self.user_id(user.user_id), attrs or {})

    def events_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Vectorised `event` for an events frame (columns as `Store.events_frame`).

        Under ``reject`` rows with PII raise; use `event` per record to skip them instead.
        """
        out = frame.copy()
        cache: dict[str, str] = {}

        def uid(v: Any) -> Any:
            if v is None or (isinstance(v, float) and v != v):
                return v
            s = str(v)
            p = cache.get(s)
            if p is None:
                p = cache[s] = self.user_id(s)
            return p

        out["user_id"] = [uid(v) for v in out["user_id"]]
        if "session_id" in out:
            out["session_id"] = [
                None if v is None or v != v else self.session_id(str(v)) for v in out["session_id"]
            ]
        if "event_id" in out:
            out["event_id"] = [
                None if v is None or v != v else self._hash(str(v), "event")
                for v in out["event_id"]
            ]
        if "context" in out:
            cleaned = []
            for i, c in enumerate(out["context"]):
                ctx, findings = apply_pii_policy(
                    c if isinstance(c, Mapping) else None,
                    self.pii_policy,
                    "context",
                    "frame",
                    i + 1,
                )
                self._note(findings)
                cleaned.append(ctx)
            out["context"] = cleaned
        return out
