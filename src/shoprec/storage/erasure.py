"""Erasure of one shopper, the audit log / erasure ledger, and retention purges.

`forget_user` removes a user's events and profile (store), online state and cached results in
one call and appends an `ErasureRecord` (pseudonym, time, what was removed) to an append-only,
hash-chained JSON-lines `ErasureLog`. The same log is the *ledger* the next training reads
(`honour_erasures`): it drops the erased users' events that are older than their erasure, even
when a re-ingested source file brings them back, and returns the erasure ids it honoured so the
artifact can record them. Artifacts whose id map holds the pseudonym are marked
(`mark_artifacts`): a file ``ERASURES_PENDING.json`` in the artifact folder lists the erasures
that the artifact predates, until a retrained artifact replaces it.

Only pseudonyms ever reach this module: the service and the CLI map raw ids at the boundary
(`shoprec.data.pseudonymize`). The ledger keeps the pseudonyms of erased users - a suppression
list is the minimum needed to keep them erased - and nothing else about them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from shoprec.storage.base import Store

PENDING_FILE = "ERASURES_PENDING.json"


class Forgettable(Protocol):
    """Anything holding per-user state: online state, result caches."""

    def forget(self, user_id: str) -> Any: ...


class ErasureError(RuntimeError):
    """An erasure could not complete; the partial record was still written to the log."""

    def __init__(self, message: str, record: ErasureRecord):
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class ErasureRecord:
    """One audit entry.

    Attributes
    ----------
    erasure_id : str
        Random id (never derived from the user).
    kind : str
        "erasure" (a user's request) or "retention" (a purge of old events).
    pseudonym : str
        The erased user's pseudonym ("" for retention).
    requested_at : float
        Epoch seconds (UTC).
    removed : dict
        What was removed, by place: ``{"events": 12, "users": 1, "online_state": 1,
        "cache:results": 3}``.
    artifacts_marked : list of str
        Artifact folders that hold the user and were marked.
    complete : bool
        False when a step failed (``errors`` names the steps, not the data).
    """

    erasure_id: str
    kind: str
    pseudonym: str
    requested_at: float
    removed: dict[str, int] = field(default_factory=dict)
    artifacts_marked: list[str] = field(default_factory=list)
    complete: bool = True
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErasureRecord:
        keys = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in keys})


class ErasureLog:
    """Append-only JSON-lines audit log; each line carries the hash of the previous one, so
    an edited or deleted line is detected by `verify`.

    Parameters
    ----------
    path : str or Path
        The log file (created on first append).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]

    @staticmethod
    def _digest(prev: str, record: dict[str, Any]) -> str:
        body = json.dumps(record, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256((prev + body).encode()).hexdigest()

    def append(self, record: ErasureRecord) -> None:
        with self._lock:
            lines = self._lines()
            prev = lines[-1]["hash"] if lines else ""
            rec = record.to_dict()
            entry = {"record": rec, "prev": prev, "hash": self._digest(prev, rec)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def records(self) -> list[ErasureRecord]:
        return [ErasureRecord.from_dict(x["record"]) for x in self._lines()]

    def verify(self) -> bool:
        """True when every line's hash matches its record and the previous line."""
        prev = ""
        for x in self._lines():
            if x.get("prev") != prev or x.get("hash") != self._digest(prev, x["record"]):
                return False
            prev = x["hash"]
        return True

    def erased(self) -> dict[str, tuple[str, float]]:
        """``{pseudonym: (erasure_id, requested_at)}`` of the latest erasure of each user."""
        out: dict[str, tuple[str, float]] = {}
        for r in self.records():
            if r.kind == "erasure" and r.pseudonym:
                out[r.pseudonym] = (r.erasure_id, r.requested_at)
        return out


def _count(result: Any) -> int:
    if isinstance(result, bool):
        return int(result)
    if isinstance(result, int):
        return result
    if isinstance(result, dict):
        return int(sum(v for v in result.values() if isinstance(v, int | float)))
    return 1 if result is None else int(bool(result))


def _forget_online(online_state: Forgettable, user: str) -> int:
    """Forget the user's online state; the count of events it held when it can tell."""
    recent = getattr(online_state, "recent", None)
    n = len(recent(user, getattr(online_state, "max_events", 10**6))) if recent else None
    result = online_state.forget(user)
    return _count(result) if n is None else n


def forget_user(
    pseudonym: str,
    store: Store | None,
    online_state: Forgettable | None = None,
    caches: Sequence[tuple[str, Forgettable]] = (),
    audit_log: ErasureLog | None = None,
    artifacts: Iterable[str | Path] = (),
    now: float | None = None,
) -> ErasureRecord:
    """Remove everything held about one (pseudonymous) user and write the audit record.

    Parameters
    ----------
    pseudonym : str
        The user's id as stored (the pseudonym; never the raw id).
    store : Store or None
        Events and profile; ``store.delete_user`` reports rows per table.
    online_state : object with ``forget(user_id)``, optional
    caches : sequence of (name, object with ``forget(user_id)``)
        Result caches; each reports under its name.
    audit_log : ErasureLog, optional
    artifacts : iterable of artifact folders
        Those whose user id map holds the pseudonym are marked (`mark_artifacts`).
    now : float, optional
        Time of the request (epoch seconds); defaults to the clock.

    Raises
    ------
    ErasureError
        When a step failed; the others still ran and the partial record was logged.
    """
    if not pseudonym:
        raise ValueError("forget_user: empty user id")
    erasure_id = uuid.uuid4().hex
    requested_at = time.time() if now is None else float(now)
    removed: dict[str, int] = {}
    errors: list[str] = []
    steps: list[tuple[str, Any]] = []
    if store is not None:
        steps.append(("store", lambda: store.delete_user(pseudonym)))
    if online_state is not None:
        steps.append(("online_state", lambda: _forget_online(online_state, pseudonym)))
    for name, cache in caches:
        steps.append((name, lambda c=cache: c.forget(pseudonym)))
    for name, step in steps:
        try:
            result = step()
        except Exception as exc:  # keep going: the other places must still be erased
            errors.append(f"{name}: {type(exc).__name__}")
            continue
        if name == "store" and isinstance(result, dict):
            removed.update({str(k): int(v) for k, v in result.items()})
        else:
            removed[name] = _count(result)
    marked = mark_artifacts(artifacts, pseudonym, erasure_id)
    record = ErasureRecord(
        erasure_id,
        "erasure",
        pseudonym,
        requested_at,
        removed,
        marked,
        complete=not errors,
        errors=errors,
    )
    if audit_log is not None:
        audit_log.append(record)
    if errors:
        raise ErasureError("erasure incomplete: " + "; ".join(errors), record)
    return record


def artifact_users(path: str | Path) -> set[str]:
    """User ids (pseudonyms) in an artifact folder's id maps.

    Reads every ``*.json`` file whose name mentions users (``users.json``,
    ``id_maps.json`` with a ``users`` list): the artifact format keeps id maps as JSON lists.
    """
    out: set[str] = set()
    for f in Path(path).rglob("*.json"):
        name = f.name.lower()
        if "user" not in name and "id_map" not in name and "idmap" not in name:
            continue
        try:
            obj = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict):
            obj = obj.get("users", obj.get("user_ids", []))
        if isinstance(obj, list):
            out.update(str(x) for x in obj)
    return out


def mark_artifacts(artifacts: Iterable[str | Path], pseudonym: str, erasure_id: str) -> list[str]:
    """Mark the artifacts trained on this user's data; returns the marked folders."""
    marked: list[str] = []
    for a in artifacts:
        folder = Path(a)
        if not folder.is_dir() or pseudonym not in artifact_users(folder):
            continue
        pending_file = folder / PENDING_FILE
        pending = json.loads(pending_file.read_text()) if pending_file.exists() else []
        if erasure_id not in pending:
            pending.append(erasure_id)
        pending_file.write_text(json.dumps(pending))
        marked.append(str(folder))
    return marked


def pending_erasures(artifact: str | Path) -> list[str]:
    """Erasure ids that happened after `artifact` was trained on the erased users' data."""
    f = Path(artifact) / PENDING_FILE
    return json.loads(f.read_text()) if f.exists() else []


def honour_erasures(
    events: pd.DataFrame, ledger: ErasureLog | None
) -> tuple[pd.DataFrame, list[str]]:
    """Drop events of erased users that predate their erasure (columns user_id, timestamp).

    Returns
    -------
    (frame, erasure ids honoured): the ids of every erasure in the ledger, which the
    artifact records in its ``erasures`` field.
    """
    if ledger is None:
        return events, []
    erased = ledger.erased()
    if not erased:
        return events, []
    cutoff = events["user_id"].astype(str).map({p: t for p, (_, t) in erased.items()})
    drop = cutoff.notna() & (events["timestamp"].astype(float) <= cutoff.fillna(0.0))
    return events.loc[~drop.to_numpy()].reset_index(drop=True), sorted(
        e for e, _ in erased.values()
    )


def apply_ledger(
    events: pd.DataFrame,
    users: pd.DataFrame | None,
    ledger: ErasureLog | None,
    retention_days: float = 0.0,
    now: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """What training may read: `honour_erasures` on the events, the erased users' profile rows
    dropped unless they came back with new events, and events past retention left out.

    Returns
    -------
    (events, users, erasure ids honoured)
    """
    events, honoured = honour_erasures(events, ledger)
    if retention_days > 0:
        t = time.time() if now is None else float(now)
        events = events.loc[events["timestamp"].astype(float) >= t - retention_days * 86400.0]
        events = events.reset_index(drop=True)
    if users is not None and ledger is not None and honoured:
        gone = set(ledger.erased()) - set(events["user_id"].astype(str))
        users = users.loc[~users["user_id"].astype(str).isin(gone)].reset_index(drop=True)
    return events, users, honoured


def purge_expired(
    store: Store,
    retention_days: float,
    now: float | None = None,
    audit_log: ErasureLog | None = None,
) -> int:
    """Retention: delete events older than `retention_days`; 0 (or less) keeps everything.

    Returns the number of events removed (and logs a "retention" record when any were).
    """
    if retention_days <= 0:
        return 0
    t = time.time() if now is None else float(now)
    cutoff = t - retention_days * 86400.0
    n = int(store.purge_events_before(cutoff))
    if audit_log is not None and n:
        audit_log.append(
            ErasureRecord(
                uuid.uuid4().hex, "retention", "", t, {"events": n, "before": int(cutoff)}
            )
        )
    return n
