"""The ingest engine: validate raw records, store the good ones in batches, name the bad ones.

Input is a stream of `(source, record_no, raw_dict)` tuples (what `shoprec.data.readers`
produce), in which a reader may also place `RecordError` instances for records it could not
even turn into a dict (a CSV line with the wrong field count). Every record ends up in exactly
one bucket, so `rows in = accepted + rejected + duplicates` always holds:

- **accepted**: valid and newly stored;
- **rejected**: failed validation; one JSON line each in the rejects file
  (`source, record, field, reason, detail`);
- **duplicates**: valid but already stored (events: same `Event.dedup_key()`; items and users:
  an id seen earlier in the same run, which the later record overwrites).

Memory stays bounded by `batch_size` records (plus, for items and users, the set of ids seen).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import orjson

from shoprec.data.pseudonymize import Pseudonymizer
from shoprec.data.schema import parse_event, parse_item, parse_user
from shoprec.storage.base import Store
from shoprec.types import Event, Item, RecordError, User

Kind = Literal["events", "items", "users"]
RecordStream = Iterable[tuple[str, int, Mapping[str, Any]] | RecordError]

_PARSERS: dict[str, Callable[[Mapping[str, Any], str, int], Any]] = {
    "events": parse_event,
    "items": parse_item,
    "users": parse_user,
}


@dataclass
class IngestReport:
    """Counts of one ingest run; `reasons` counts rejects per reason."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Records read: `accepted + rejected + duplicates`."""
        return self.accepted + self.rejected + self.duplicates

    def as_dict(self) -> dict[str, Any]:
        """`{"accepted", "rejected", "duplicates", "reasons"}`, the CLI's JSON summary."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "reasons": dict(sorted(self.reasons.items())),
        }

    def merge(self, other: IngestReport) -> IngestReport:
        """Sum of two reports (events, items and users of one command)."""
        reasons = dict(self.reasons)
        for k, v in other.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        return IngestReport(
            self.accepted + other.accepted,
            self.rejected + other.rejected,
            self.duplicates + other.duplicates,
            reasons,
        )


class IngestError(RuntimeError):
    """A strict ingest stopped at a bad record.

    Attributes
    ----------
    error : RecordError
        The first bad record.
    report : IngestReport
        Counts up to and including that record; `report.accepted` records were stored.
    """

    def __init__(self, error: RecordError, report: IngestReport) -> None:
        self.error = error
        self.report = report
        super().__init__(
            f"strict ingest stopped at the first bad record: {error}; "
            f"{report.accepted} record(s) were stored before it "
            f"({report.duplicates} duplicate(s) skipped)"
        )


def ingest(
    records: RecordStream,
    store: Store,
    *,
    kind: Kind = "events",
    rejects: TextIO | None = None,
    strict: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int], Any] | None = None,
    background_writes: bool = True,
    boundary: Pseudonymizer | None = None,
) -> IngestReport:
    """Validate and store a stream of raw records.

    Parameters
    ----------
    records : iterable
        `(source, record_no, raw)` tuples, or `RecordError` instances for records a reader
        could not parse (counted and written as rejects).
    store : Store
        Destination.
    kind : {"events", "items", "users"}
        What the records are; picks `parse_event`, `parse_item` or `parse_user`.
    rejects : text file, optional
        Receives one JSON line per bad record.
    strict : bool
        Stop at the first bad record: records before it are stored, then `IngestError` is
        raised.
    batch_size : int
        Records validated before each write to the store.
    progress : callable, optional
        Called with the number of records consumed since the previous call (fits
        `tqdm.update`).
    background_writes : bool
        Write batches on a helper thread while the next batch is validated (the store must
        accept calls from another thread, as `SQLiteStore` and `PostgresStore` do).
    boundary : Pseudonymizer, optional
        Pseudonymises user (session, event) ids and applies the PII policy to events and
        users before anything is stored (`shoprec.data.pseudonymize`).

    Returns
    -------
    IngestReport

    Raises
    ------
    IngestError
        With `strict=True`, at the first bad record.
    ValueError
        For an unknown `kind` or a non-positive `batch_size`.
    """
    if kind not in _PARSERS:
        raise ValueError(f"unknown ingest kind {kind!r}; use events, items or users")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    parse = _PARSERS[kind]
    report = IngestReport()
    writer = _Writer(kind, store, report, background_writes)
    batch: list[Any] = []
    consumed = 0

    def flush() -> None:
        nonlocal consumed, batch
        if batch:
            writer.submit(batch)
            batch = []
        if progress is not None and consumed:
            progress(consumed)
        consumed = 0

    try:
        for rec in records:
            consumed += 1
            if isinstance(rec, RecordError):
                err = rec
            else:
                source, record_no, raw = rec
                try:
                    parsed = parse(raw, source, record_no)
                    if boundary is not None and kind == "events":
                        parsed = boundary.event(parsed, source, record_no)
                    elif boundary is not None and kind == "users":
                        parsed = boundary.user(parsed, source, record_no)
                    batch.append(parsed)
                except RecordError as exc:
                    err = exc
                else:
                    if len(batch) >= batch_size:
                        flush()
                    continue
            report.rejected += 1
            report.reasons[err.reason] = report.reasons.get(err.reason, 0) + 1
            if rejects is not None:
                rejects.write(orjson.dumps(err.as_dict(), default=str).decode() + "\n")
            if strict:
                flush()
                writer.finish()
                raise IngestError(err, report) from err
        flush()
    except BaseException:
        writer.finish(reraise=False)  # the error in flight is the one to report
        raise
    writer.finish()
    return report


class _Writer:
    """Writes validated batches, on a background thread when asked.

    The thread lets the store's work (SQLite's B-tree updates run without the GIL; PostgreSQL's
    run in the server process) overlap with validating the next batch. The queue holds one
    batch, so at most three batches are in memory: one queued, one being written, one filling.
    """

    def __init__(self, kind: str, store: Store, report: IngestReport, background: bool) -> None:
        self.kind, self.store, self.report = kind, store, report
        self.seen: set[str] = set()  # ids of items/users written in this run
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.queue: queue.Queue[list[Any] | None] = queue.Queue(maxsize=1)
        if background:
            self.thread = threading.Thread(target=self._run, name="shoprec-ingest", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:  # after a failure, drain so the producer never blocks
                try:
                    _store_batch(self.kind, batch, self.store, self.report, self.seen)
                except BaseException as exc:  # re-raised in the caller's thread
                    self.error = exc

    def submit(self, batch: list[Any]) -> None:
        if self.error is not None:
            self.finish()
        if self.thread is None:
            _store_batch(self.kind, batch, self.store, self.report, self.seen)
        else:
            self.queue.put(batch)

    def finish(self, reraise: bool = True) -> None:
        """Wait for queued batches to be written; re-raise a write error. Idempotent."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        if self.error is not None:
            err, self.error = self.error, None
            if reraise:
                raise err


def _store_batch(
    kind: str, batch: list[Any], store: Store, report: IngestReport, seen: set[str]
) -> None:
    if kind == "events":
        events: list[Event] = batch
        res = store.add_events(events)
        report.accepted += res.inserted
        report.duplicates += res.duplicates
        return
    ids = [r.item_id if kind == "items" else r.user_id for r in batch]
    for i in ids:
        if i in seen:
            report.duplicates += 1
        else:
            seen.add(i)
            report.accepted += 1
    if kind == "items":
        items: list[Item] = batch
        store.upsert_items(items)
    else:
        users: list[User] = batch
        store.upsert_users(users)
