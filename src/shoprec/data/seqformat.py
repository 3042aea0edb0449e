"""Readers for the research benchmark layouts that carry order but no event records.

- sequence text (`Beauty.txt`, `ml-1m.txt.gz`): one line per user, `user item item ...` in
  time order; `*_item2attributes.json` maps item id -> attribute ids;
- RecBole history files (`Games-6k.test.inter`): `user_id  item_id_list  item_id` rows whose
  full sequence is the history followed by the target;
- RecBole interaction files (`ml-100k.inter`): `user_id  item_id  [rating]  timestamp`.

Each returns an `InteractionData`; timestamps are positions where the file has none.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData


def _open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_sequences(path: str | Path) -> Iterator[tuple[str, list[str]]]:
    """Yield `(user_id, [item_id, ...])` from a sequence text file (gzip allowed)."""
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{line_no}: expected 'user item [item ...]'")
            yield parts[0], parts[1:]


def read_item_attributes(path: str | Path) -> dict[str, list[str]]:
    """`{"item_id": [attribute_id, ...]}` JSON as str -> list[str]."""
    with _open_text(path) as f:
        raw = json.load(f)
    return {str(k): [str(a) for a in v] for k, v in raw.items()}


def read_seq(path: str | Path, item_attributes: str | Path | None = None) -> InteractionData:
    """Read sequence text into `InteractionData` (attributes become `item_table.tags`)."""
    seqs = dict(iter_sequences(path))
    attrs = read_item_attributes(item_attributes) if item_attributes else None
    data = InteractionData.from_sequences(seqs, attrs)
    data.meta["source"] = str(path)
    return data


def _recbole_frame(path: str | Path) -> pd.DataFrame:
    """A RecBole atomic file with its typed header (`name:type`) stripped to names."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def read_recbole_history(path: str | Path) -> InteractionData:
    """Read a RecBole `user_id  item_id_list  item_id` file: sequence = history + target."""
    frame = _recbole_frame(path)
    if not {"user_id", "item_id_list", "item_id"} <= set(frame.columns):
        raise ValueError(f"{path}: needs columns user_id, item_id_list, item_id")
    seqs = {
        u: hist.split() + [target]
        for u, hist, target in zip(
            frame["user_id"], frame["item_id_list"], frame["item_id"], strict=True
        )
    }
    data = InteractionData.from_sequences(seqs)
    data.meta["source"] = str(path)
    return data


def read_recbole_inter(path: str | Path) -> InteractionData:
    """Read a RecBole `.inter` file (user_id, item_id, optional rating, timestamp).

    Every row is one implicit interaction of weight 1; order within a user follows the
    timestamp, then the file order.
    """
    frame = _recbole_frame(path)
    if not {"user_id", "item_id"} <= set(frame.columns):
        raise ValueError(f"{path}: needs columns user_id and item_id")
    if "timestamp" in frame:
        ts = pd.to_numeric(frame["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        ts = np.arange(len(frame), dtype=np.float64)
    out = pd.DataFrame({"user_id": frame["user_id"], "item_id": frame["item_id"], "timestamp": ts})
    data = InteractionData.from_frame(out)
    data.meta["source"] = str(path)
    return data
