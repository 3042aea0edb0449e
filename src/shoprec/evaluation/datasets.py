"""Loading a dataset file for offline evaluation, by format.

- `seq`: sequence text (`Beauty.txt`, `ml-1m.txt.gz`), optional item2attributes JSON;
- `recbole`: a RecBole `.inter` file, either interactions (user_id, item_id, timestamp) or
  history rows (user_id, item_id_list, item_id: sequence = history + target);
- any other format of `shoprec.data.readers` (csv, jsonl, parquet, otto, diginetica,
  movielens): events validated by `shoprec.data.schema` and cleaned by
  `shoprec.data.cleaning.build_interactions` with default settings.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.data.seqformat import (
    read_item_attributes,
    read_recbole_history,
    read_recbole_inter,
    read_seq,
)


def load_dataset(
    path: str | Path, fmt: str | None = None, item_attributes: str | Path | None = None
) -> InteractionData:
    """Read `path` in format `fmt` (guessed from the name when None) into InteractionData."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if fmt is None:
        from shoprec.data.readers import guess_format

        fmt = guess_format(path)
    if fmt == "seq":
        return read_seq(path, item_attributes)
    if fmt == "recbole":
        with open(path, encoding="utf-8") as f:
            header = f.readline()
        data = read_recbole_history(path) if "item_id_list" in header else read_recbole_inter(path)
    else:
        data = _load_events(path, fmt)
    if item_attributes is not None:
        attrs = read_item_attributes(item_attributes)
        tags = [attrs.get(i, []) for i in data.items.to_list()]
        data.item_table = pd.DataFrame({"item_id": data.items.to_list(), "tags": tags})
    return data


def _load_events(path: Path, fmt: str) -> InteractionData:
    from shoprec.data.cleaning import build_interactions
    from shoprec.data.readers import read_records
    from shoprec.data.schema import parse_event
    from shoprec.types import RecordError

    rows = []
    for rec in read_records(path, fmt):
        if isinstance(rec, RecordError):
            continue
        source, record_no, raw = rec
        try:
            ev = parse_event(raw, source, record_no)
        except RecordError:
            continue
        rows.append((ev.user_id, ev.item_id, ev.event_type, ev.timestamp, ev.value, ev.session_id))
    if not rows:
        raise ValueError(f"{path}: no valid events")
    frame = pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "timestamp", "value", "session_id"]
    )
    data, _ = build_interactions(frame)
    return data
