"""`Candidates`: a columnar list of items that remembers who found each one and why.

Every retriever returns one; merging keeps one column per source (score, rank and an
evidence reference), so the explanation of a recommended item survives to the response.
Everything is numpy: no per-item Python on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Candidates:
    """Items with their current score, per-source columns and adjustment notes.

    Attributes
    ----------
    items : np.ndarray, shape (n,), int64
        Item indices, in the current order (best first once ranked).
    scores : np.ndarray, shape (n,), float64
        Current score (a retriever's score, then the ranker's).
    source_scores, source_ranks : dict of str -> np.ndarray, shape (n,)
        Per source, its score and 0-based rank; NaN where that source did not find the item.
    evidence : dict of str -> np.ndarray, shape (n,), int64
        Per source, a reference its `explain` understands (a history item, a category
        code...); -1 for none.
    adjustments : dict of int -> list of str
        Item index -> what rules and knobs did to it ("diversity: moved down 2").
    """

    items: np.ndarray
    scores: np.ndarray
    source_scores: dict[str, np.ndarray] = field(default_factory=dict)
    source_ranks: dict[str, np.ndarray] = field(default_factory=dict)
    evidence: dict[str, np.ndarray] = field(default_factory=dict)
    adjustments: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64))

    @classmethod
    def from_source(
        cls,
        source: str,
        items: np.ndarray,
        scores: np.ndarray,
        evidence: np.ndarray | None = None,
    ) -> Candidates:
        """One source's list, best first (ranks are the positions)."""
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        ev = (
            np.full(len(items), -1, np.int64)
            if evidence is None
            else np.asarray(evidence, np.int64)
        )
        return cls(
            items,
            scores.copy(),
            {source: scores},
            {source: np.arange(len(items), dtype=np.float64)},
            {source: ev},
        )

    @property
    def sources(self) -> list[str]:
        return list(self.source_scores)

    def take(self, positions: np.ndarray) -> Candidates:
        """Rows at `positions` (reorders or subsets); adjustments are kept."""
        p = np.asarray(positions, dtype=np.int64)
        return Candidates(
            self.items[p],
            self.scores[p],
            {s: v[p] for s, v in self.source_scores.items()},
            {s: v[p] for s, v in self.source_ranks.items()},
            {s: v[p] for s, v in self.evidence.items()},
            self.adjustments,
        )

    def sorted(self) -> Candidates:
        """Best score first (stable, so equal scores keep their order)."""
        return self.take(np.argsort(-self.scores, kind="stable"))

    def head(self, n: int) -> Candidates:
        return self.take(np.arange(min(n, len(self))))

    def note(self, item: int, text: str) -> None:
        self.adjustments.setdefault(int(item), []).append(text)

    def insert(
        self, position: int, item: int, source: str, score: float | None = None, ref: int = -1
    ) -> Candidates:
        """A copy with `item` at `position` (moved there when already present).

        `source` is recorded as one more source of the item (e.g. "promotion"); what the
        other sources knew about a moved item stays with it. One pass per column (this runs
        for every exploration slot and promotion of every request).
        """
        item = int(item)
        where = np.flatnonzero(self.items == item)
        keep = np.delete(np.arange(len(self)), where) if len(where) else None
        n_base = len(self) - len(where)
        position = max(0, min(position, n_base))

        def base(col: np.ndarray) -> np.ndarray:
            return col[keep] if keep is not None else col

        def put(col: np.ndarray, value: Any) -> np.ndarray:
            return np.concatenate(
                [col[:position], np.asarray([value], dtype=col.dtype), col[position:]]
            )

        scores = base(self.scores)
        if score is None:
            score = (
                float(scores[position - 1])
                if position > 0 and n_base
                else (float(scores[0]) if n_base else 1.0)
            )
        out = Candidates(put(base(self.items), item), put(scores, float(score)))
        out.adjustments = self.adjustments
        w = int(where[0]) if len(where) else -1
        # column order as stacking the three pieces gives: a row put first brings its own
        # source's column first
        names = list(self.source_scores)
        if source in names and (position == 0 or n_base == 0):
            names.remove(source)
        if source not in names:
            names = [source, *names] if position == 0 or n_base == 0 else [*names, source]
        nan_col = np.full(n_base, np.nan)
        for s in names:
            if s == source:
                row = (float(score), 0.0, int(ref))
            elif w >= 0:
                row = (self.source_scores[s][w], self.source_ranks[s][w], self.evidence[s][w])
            else:
                row = (np.nan, np.nan, -1)
            if s in self.source_scores:
                cols = (self.source_scores[s], self.source_ranks[s], self.evidence[s])
                sc, rk, ev = (base(c) for c in cols)
            else:
                sc, rk, ev = nan_col, nan_col, np.full(n_base, -1, np.int64)
            out.source_scores[s] = put(sc, row[0])
            out.source_ranks[s] = put(rk, row[1])
            out.evidence[s] = put(ev, row[2])
        return out


def concat(
    parts: Sequence[Candidates], adjustments: dict[int, list[str]] | None = None
) -> Candidates:
    """Stack lists in order (no de-duplication); missing source columns become NaN / -1.

    The parts' adjustments are merged into a new dict, unless `adjustments` is given (then
    that dict is the result's, as is)."""
    parts = [p for p in parts if len(p)] or list(parts[:1]) or [Candidates.empty()]
    names: list[str] = []
    for p in parts:
        names.extend(s for s in p.source_scores if s not in names)
    out = Candidates(
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.scores for p in parts]),
    )
    for s in names:
        out.source_scores[s] = np.concatenate(
            [p.source_scores.get(s, np.full(len(p), np.nan)) for p in parts]
        )
        out.source_ranks[s] = np.concatenate(
            [p.source_ranks.get(s, np.full(len(p), np.nan)) for p in parts]
        )
        out.evidence[s] = np.concatenate(
            [p.evidence.get(s, np.full(len(p), -1, np.int64)) for p in parts]
        )
    if adjustments is not None:
        out.adjustments = adjustments
        return out
    for p in parts:
        for item, notes in p.adjustments.items():
            out.adjustments.setdefault(item, []).extend(notes)
    return out


def merge(parts: Sequence[Candidates]) -> Candidates:
    """De-duplicate several sources' lists into one, one column per source.

    The merged `scores` are zero: ranking them is the ranker's job. Items come out in
    ascending index order.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return Candidates.empty()
    all_items = np.concatenate([p.items for p in parts])
    uniq, inverse = np.unique(all_items, return_inverse=True)
    n = len(uniq)
    out = Candidates(uniq, np.zeros(n, np.float64))
    offset = 0
    for p in parts:
        rows = inverse[offset : offset + len(p)]
        offset += len(p)
        for s in p.source_scores:
            if s not in out.source_scores:
                out.source_scores[s] = np.full(n, np.nan)
                out.source_ranks[s] = np.full(n, np.nan)
                out.evidence[s] = np.full(n, -1, np.int64)
            out.source_scores[s][rows] = p.source_scores[s]
            out.source_ranks[s][rows] = p.source_ranks[s]
            out.evidence[s][rows] = p.evidence[s]
    return out
