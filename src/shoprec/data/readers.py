"""Streaming record readers: one per source format, bounded memory.

Each reader yields `(source, record_no, raw_dict)` with our field names (user_id, item_id,
event_type, timestamp, ...), or a `RecordError` for a record that cannot even be split into
fields (wrong field count, broken JSON). Validation of the fields is `shoprec.data.schema`'s
job; readers only map columns.

Formats: csv, parquet, jsonl (generic, with a column mapping), seq (sequence text + optional
item2attributes), recbole (`.inter` / `.item` / `.user`), otto (session JSON Lines),
diginetica (`;` CSV), movielens (`ratings.dat` with `::`, or `u.data` tab-separated).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shoprec.data.seqformat import _open_text, iter_sequences, read_item_attributes
from shoprec.types import RecordError

Record = tuple[str, int, dict[str, Any]] | RecordError

FORMATS = ("csv", "parquet", "jsonl", "seq", "recbole", "otto", "diginetica", "movielens")


def _rename(row: Mapping[str, Any], mapping: Mapping[str, str] | None) -> dict[str, Any]:
    if not mapping:
        return dict(row)
    return {mapping.get(k, k): v for k, v in row.items()}


def read_csv_records(
    path: str | Path, mapping: Mapping[str, str] | None = None, delimiter: str = ","
) -> Iterator[Record]:
    """CSV with a header row; `mapping` renames source columns to ours."""
    src = Path(path).name
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                yield RecordError(
                    src,
                    line,
                    "",
                    "wrong_field_count",
                    f"expected {len(header)} fields, got {len(row)}",
                )
                continue
            yield src, line, _rename(dict(zip(header, row, strict=True)), mapping)


def read_jsonl_records(
    path: str | Path, mapping: Mapping[str, str] | None = None
) -> Iterator[Record]:
    """One JSON object per line."""
    src = Path(path).name
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RecordError(src, line_no, "", "bad_json", str(exc)[:80])
                continue
            if not isinstance(obj, dict):
                yield RecordError(src, line_no, "", "not_an_object", type(obj).__name__)
                continue
            yield src, line_no, _rename(obj, mapping)


def read_parquet_records(
    path: str | Path, mapping: Mapping[str, str] | None = None, batch_size: int = 65536
) -> Iterator[Record]:
    """Parquet, streamed in record batches."""
    import pyarrow.parquet as pq

    src = Path(path).name
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            n += 1
            yield src, n, _rename(row, mapping)


def read_seq_records(path: str | Path, event_type: str = "purchase") -> Iterator[Record]:
    """Sequence text: each item becomes an event whose timestamp is its position."""
    src = Path(path).name
    try:
        for line_no, (user, items) in enumerate(iter_sequences(path), 1):
            for pos, item in enumerate(items):
                yield (
                    src,
                    line_no,
                    {
                        "user_id": user,
                        "item_id": item,
                        "event_type": event_type,
                        "timestamp": pos,
                        "event_id": f"{user}:{pos}",
                    },
                )
    except ValueError as exc:
        yield RecordError(src, 0, "", "bad_line", str(exc))


def read_seq_items(path: str | Path) -> Iterator[Record]:
    """`item2attributes.json` as catalog records (attributes kept as tags)."""
    src = Path(path).name
    for n, (item, attrs) in enumerate(read_item_attributes(path).items(), 1):
        yield src, n, {"item_id": item, "attributes": {"tags": attrs}}


def read_recbole_records(path: str | Path, event_type: str = "rating") -> Iterator[Record]:
    """RecBole atomic files: typed header `name:type`; `.inter` rows become events (a rating
    column makes rating events), `.item`/`.user` rows become catalog/user records."""
    src = Path(path).name
    kind = Path(path).suffix
    with _open_text(path) as f:
        header = [c.split(":", 1)[0] for c in f.readline().rstrip("\n").split("\t")]
        for line_no, line in enumerate(f, 2):
            if not line.strip():
                continue
            row = line.rstrip("\n").split("\t")
            if len(row) != len(header):
                yield RecordError(
                    src,
                    line_no,
                    "",
                    "wrong_field_count",
                    f"expected {len(header)} fields, got {len(row)}",
                )
                continue
            rec = dict(zip(header, row, strict=True))
            if kind == ".inter":
                if "rating" in rec:
                    rec["value"] = rec.pop("rating")
                    rec.setdefault("event_type", event_type)
                else:
                    rec.setdefault("event_type", "purchase")
            elif kind == ".item":
                for title_col in ("movie_title", "title"):
                    if title_col in rec:
                        rec["title"] = rec.pop(title_col)
                if "class" in rec:
                    rec["category"] = rec.pop("class")
                extra = {
                    k: rec.pop(k) for k in list(rec) if k not in ("item_id", "title", "category")
                }
                rec["attributes"] = extra
            yield src, line_no, rec


OTTO_TYPES = {"clicks": "click", "carts": "add_to_cart", "orders": "purchase"}


def read_otto_records(path: str | Path) -> Iterator[Record]:
    """OTTO sessions: `{"session": s, "events": [{"aid", "ts" (ms), "type"}]}` per line; the
    session is the (anonymous) user."""
    src = Path(path).name
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                session, events = obj["session"], obj["events"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                yield RecordError(src, line_no, "", "bad_session", str(exc)[:80])
                continue
            for ev in events:
                if not isinstance(ev, dict):
                    yield RecordError(src, line_no, "events", "not_an_object", type(ev).__name__)
                    continue
                yield (
                    src,
                    line_no,
                    {
                        "user_id": session,
                        "session_id": session,
                        "item_id": ev.get("aid"),
                        "timestamp": ev.get("ts"),
                        "event_type": OTTO_TYPES.get(ev.get("type"), ev.get("type")),
                    },
                )


def read_diginetica_records(path: str | Path) -> Iterator[Record]:
    """Diginetica item views: `session_id;user_id;item_id;timeframe;eventdate`. Anonymous
    sessions (user NA) use the session as the user; time = date + timeframe (ms)."""
    from datetime import UTC, datetime

    for rec in read_csv_records(path, delimiter=";"):
        if isinstance(rec, RecordError):
            yield rec
            continue
        src, line, row = rec
        user = row.get("user_id")
        if not user or user == "NA":
            user = "s" + str(row.get("session_id", ""))
        try:
            day = (
                datetime.strptime(row.get("eventdate", ""), "%Y-%m-%d")
                .replace(tzinfo=UTC)
                .timestamp()
            )
            ts: Any = day + float(row.get("timeframe", 0)) / 1000.0
        except ValueError:
            ts = row.get("eventdate")  # schema names the bad timestamp
        yield (
            src,
            line,
            {
                "user_id": user,
                "session_id": row.get("session_id"),
                "item_id": row.get("item_id"),
                "event_type": "view",
                "timestamp": ts,
            },
        )


def read_movielens_records(path: str | Path) -> Iterator[Record]:
    """MovieLens ratings: `ratings.dat` (`u::i::r::t`) or `u.data` (tab-separated)."""
    src = Path(path).name
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split("::") if "::" in line else line.split()
            if len(parts) != 4:
                yield RecordError(
                    src, line_no, "", "wrong_field_count", f"expected 4 fields, got {len(parts)}"
                )
                continue
            u, i, r, t = parts
            yield (
                src,
                line_no,
                {"user_id": u, "item_id": i, "event_type": "rating", "value": r, "timestamp": t},
            )


def guess_format(path: str | Path) -> str:
    """Format from the file name: .csv, .parquet, .jsonl/.json, .txt (seq), .inter/.item/.user."""
    name = Path(path).name.lower().removesuffix(".gz")
    for suffix, fmt in (
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".json", "jsonl"),
        (".txt", "seq"),
        (".inter", "recbole"),
        (".item", "recbole"),
        (".user", "recbole"),
        (".dat", "movielens"),
        (".data", "movielens"),
    ):
        if name.endswith(suffix):
            return fmt
    raise ValueError(
        f"cannot guess the format of {path}; pass --format (one of {', '.join(FORMATS)})"
    )


def read_records(
    path: str | Path,
    fmt: str | None = None,
    kind: str = "events",
    mapping: Mapping[str, str] | None = None,
) -> Iterator[Record]:
    """Records of `path` in format `fmt` (guessed from the name when None)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = fmt or guess_format(path)
    if fmt == "csv":
        return read_csv_records(path, mapping)
    if fmt == "jsonl":
        return read_jsonl_records(path, mapping)
    if fmt == "parquet":
        return read_parquet_records(path, mapping)
    if fmt == "seq":
        return read_seq_items(path) if kind == "items" else read_seq_records(path)
    if fmt == "recbole":
        return read_recbole_records(path)
    if fmt == "otto":
        return read_otto_records(path)
    if fmt == "diginetica":
        return read_diginetica_records(path)
    if fmt == "movielens":
        return read_movielens_records(path)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def parse_mapping(text: str | None) -> dict[str, str]:
    """`"visitorid=user_id,itemid=item_id"` -> {"visitorid": "user_id", "itemid": "item_id"}."""
    if not text:
        return {}
    out = {}
    for pair in text.split(","):
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"bad column mapping {pair!r}; expected source=target")
        out[src.strip()] = dst.strip()
    return out


__all__ = ["FORMATS", "Record", "read_records", "guess_format", "parse_mapping"]
