"""Shared builders for the privacy tests: a small attribute-design `PrivateSeq`, and a data
set written as the CLI's sequence file plus item2attributes JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shoprec.data.interactions import InteractionData
from shoprec.models.private_seq import PrivateSeq


def attribute_model(**over: Any) -> PrivateSeq:
    """A tiny `PrivateSeq(item_repr="attributes")` with the popularity release; `over`
    overrides or adds settings (e.g. the transition priors)."""
    params: dict[str, Any] = dict(
        item_repr="attributes",
        popularity_init=0.3,
        dim=8,
        heads=2,
        max_len=6,
        epochs=1,
        batch_size=40,
    )
    params.update(over)
    return PrivateSeq(**params)


def write_seq_files(data: InteractionData, folder: Path) -> tuple[Path, Path]:
    """`data` (items named "b<brand>i<k>") as `user item item ...` lines and an
    item2attributes JSON giving each item its brand and "all"."""
    names = data.items.to_list()
    seqs = folder / "tiny.txt"
    seqs.write_text(
        "".join(
            f"{u} " + " ".join(names[i] for i in s) + "\n"
            for u, s in zip(data.users.to_list(), data.sequences(), strict=True)
        )
    )
    attrs = folder / "attrs.json"
    attrs.write_text(json.dumps({i: [i.split("i")[0].replace("b", "brand"), "all"] for i in names}))
    return seqs, attrs
