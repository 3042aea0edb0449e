"""`Candidates`: a columnar list of items that remembers who found each one and why.

Every retriever returns one; merging keeps one column per source (score, rank and an
evidence reference), so the explanation of a recommended item survives to the response.
The per-source columns are one (3, S, n) float matrix (scores, ranks, evidence for S
sources), so taking, sorting, cutting, inserting and stacking rows are one numpy operation
each, whatever the number of sources: no per-item or per-source Python on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SCORE, RANK, EVIDENCE = 0, 1, 2  # planes of `Candidates.columns`
_MISSING = np.array([np.nan, np.nan, -1.0])  # a source that did not find an item


def _blank(n_sources: int, n: int) -> np.ndarray:
    """Columns of `n_sources` sources that found none of `n` items. Shape (3, S, n)."""
    m = np.empty((3, n_sources, n))
    m[:2] = np.nan
    m[2] = -1.0
    return m


class Candidates:
    """Items with their current score, per-source columns and adjustment notes.

    Parameters
    ----------
    items : np.ndarray, shape (n,), int64
        Item indices, in the current order (best first once ranked).
    scores : np.ndarray, shape (n,), float64
        Current score (a retriever's score, then the ranker's).
    source_scores, source_ranks : mapping of str -> np.ndarray, shape (n,), optional
        Per source, its score and 0-based rank; NaN where that source did not find the item.
    evidence : mapping of str -> np.ndarray, shape (n,), int64, optional
        Per source, a reference its `explain` understands (a history item, a category
        code...); -1 for none.
    adjustments : dict of int -> list of str, optional
        Item index -> what rules and knobs did to it ("diversity: moved down 2").

    Attributes
    ----------
    names : tuple of str
        The sources, in column order.
    columns : np.ndarray, shape (3, S, n), float64
        Planes `SCORE`, `RANK` and `EVIDENCE` (references as floats, exact for int64 below
        2**53) of each source, row j of a plane being source `names[j]`.
    """

    __slots__ = ("items", "scores", "names", "_base", "_rows", "adjustments", "rest")

    def __init__(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        source_scores: Mapping[str, np.ndarray] | None = None,
        source_ranks: Mapping[str, np.ndarray] | None = None,
        evidence: Mapping[str, np.ndarray] | None = None,
        adjustments: dict[int, list[str]] | None = None,
    ):
        self.items = np.asarray(items, np.int64)
        self.scores = np.asarray(scores, np.float64)
        names = tuple(source_scores or ())
        m = _blank(len(names), len(self.items))
        for j, s in enumerate(names):
            m[SCORE, j] = (source_scores or {})[s]
            if source_ranks is not None and s in source_ranks:
                m[RANK, j] = source_ranks[s]
            if evidence is not None and s in evidence:
                m[EVIDENCE, j] = evidence[s]
        self.names = names
        self._base, self._rows = m, None
        self.adjustments = {} if adjustments is None else adjustments
        self.rest: Candidates | None = None

    @classmethod
    def _of(
        cls,
        items: np.ndarray,
        scores: np.ndarray,
        names: tuple[str, ...],
        columns: np.ndarray,
        adjustments: dict[int, list[str]],
        rows: np.ndarray | None = None,
    ) -> Candidates:
        """The constructor without checks or copies (arrays already in their final form);
        with `rows`, the columns are `columns[:, :, rows]`, gathered when first read."""
        out = cls.__new__(cls)
        out.items, out.scores, out.names = items, scores, names
        out._base, out._rows, out.adjustments, out.rest = columns, rows, adjustments, None
        return out

    @property
    def columns(self) -> np.ndarray:
        """Planes `SCORE`, `RANK`, `EVIDENCE` of each source. Shape (3, S, n), float64.

        `take` only records which rows it keeps; they are gathered here, once, so a chain
        of re-orderings and filters copies the per-source columns at most once."""
        if self._rows is not None:
            self._base = self._base.take(self._rows, axis=2)
            self._rows = None
        return self._base

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def empty(cls) -> Candidates:
        return cls._of(np.zeros(0, np.int64), np.zeros(0), (), np.zeros((3, 0, 0)), {})

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
        n = len(items)
        m = np.empty((3, 1, n))
        m[SCORE, 0] = scores
        m[RANK, 0] = np.arange(n)
        m[EVIDENCE, 0] = -1.0 if evidence is None else evidence
        return cls._of(items, m[SCORE, 0].copy(), (source,), m, {})

    # ------------------------------------------------------------ column views
    @property
    def sources(self) -> list[str]:
        return list(self.names)

    def _plane(self, plane: int) -> dict[str, np.ndarray]:
        return {s: self.columns[plane, j] for j, s in enumerate(self.names)}

    @property
    def source_scores(self) -> dict[str, np.ndarray]:
        """Per source, its scores (views of `columns`). Shape (n,) each."""
        return self._plane(SCORE)

    @property
    def source_ranks(self) -> dict[str, np.ndarray]:
        """Per source, its 0-based ranks (views of `columns`). Shape (n,) each."""
        return self._plane(RANK)

    @property
    def evidence(self) -> dict[str, np.ndarray]:
        """Per source, its evidence references (int64 copies). Shape (n,) each."""
        ev = self.columns[EVIDENCE].astype(np.int64)
        return {s: ev[j] for j, s in enumerate(self.names)}

    def source_matrix(self, sources: Sequence[str], plane: int = SCORE) -> np.ndarray:
        """Rows of `plane` for `sources` in that order, NaN rows for sources absent here.
        Shape (len(sources), n)."""
        if tuple(sources) == self.names:
            return self.columns[plane]
        where = {s: j for j, s in enumerate(self.names)}
        rows = [where.get(s, -1) for s in sources]
        out = self.columns[plane][np.maximum(rows, 0)] if self.names else None
        if out is None:
            return np.full((len(rows), len(self)), np.nan)
        missing = [i for i, r in enumerate(rows) if r < 0]
        if missing:
            out[missing] = np.nan
        return out

    # ---------------------------------------------------------------- row ops
    def take(self, positions: np.ndarray) -> Candidates:
        """Rows at `positions` (reorders or subsets); adjustments are kept."""
        p = np.asarray(positions, dtype=np.int64)
        rows = p if self._rows is None else self._rows[p]
        return Candidates._of(
            self.items[p], self.scores[p], self.names, self._base, self.adjustments, rows
        )

    def sorted(self) -> Candidates:
        """Best score first (stable, so equal scores keep their order)."""
        return self.take(np.argsort(-self.scores, kind="stable"))

    def head(self, n: int) -> Candidates:
        """The first `n` rows (views: rows are never changed in place); adjustments kept."""
        n = max(min(n, len(self)), 0)
        if self._rows is not None:
            rows = self._rows[:n]
            return Candidates._of(
                self.items[:n], self.scores[:n], self.names, self._base, self.adjustments, rows
            )
        return Candidates._of(
            self.items[:n], self.scores[:n], self.names, self._base[:, :, :n], self.adjustments
        )

    def cut(self, n: int) -> Candidates:
        """`head(n)` that still knows the rows it dropped (`rest`), so `insert` of an item
        from below the cut keeps what its sources knew, exactly as on the whole list. For
        stages that only change the first `n` rows and then keep only those."""
        out = self.head(n)
        out.rest = self if self.rest is None else self.rest
        return out

    def _row_of(self, item: int) -> np.ndarray | None:
        """The columns of `item` (3, S) in this list's source order, looked up here, then in
        `rest`; None when neither has it."""
        where = np.flatnonzero(self.items == item)
        if len(where):
            return self.columns[:, :, int(where[0])]
        rest = self.rest
        if rest is None:
            return None
        where = np.flatnonzero(rest.items == item)
        if not len(where):
            return None
        w = int(where[0]) if rest._rows is None else int(rest._rows[int(where[0])])
        found = rest._base[:, :, w]
        if rest.names == self.names:
            return found
        row = np.repeat(_MISSING[:, None], len(self.names), 1)
        for j, s in enumerate(rest.names):
            if s in self.names:
                row[:, self.names.index(s)] = found[:, j]
        return row

    def note(self, item: int, text: str) -> None:
        self.adjustments.setdefault(int(item), []).append(text)

    def insert(
        self, position: int, item: int, source: str, score: float | None = None, ref: int = -1
    ) -> Candidates:
        """A copy with `item` at `position` (moved there when already present).

        `source` is recorded as one more source of the item (e.g. "promotion"); what the
        other sources knew about a moved item stays with it. A row put first (or into an
        empty list) brings its source's column first; otherwise a new source's column goes
        last. A handful of numpy operations (this runs for every exploration slot and
        promotion of every request).
        """
        item = int(item)
        n = len(self)
        items = self.items
        where = np.flatnonzero(items == item)
        n_base = n - len(where)
        position = max(0, min(position, n_base))
        keep = np.flatnonzero(items != item) if len(where) else np.arange(n)
        # rows of the result, as positions in the old rows plus the new row (index n)
        rows = np.concatenate([keep[:position], [n], keep[position:]])
        if score is None:
            base = self.scores[keep]
            score = (
                float(base[position - 1])
                if position > 0 and n_base
                else (float(base[0]) if n_base else 1.0)
            )
        names = self.names
        cols = self.columns
        row = self._row_of(item)
        if row is None:
            row = np.repeat(_MISSING[:, None], len(names), 1)
        first = position == 0 or n_base == 0
        if source in names:
            j = names.index(source)
            if first and j:
                order = [j, *range(j), *range(j + 1, len(names))]
                names = tuple(names[i] for i in order)
                cols, row = cols[:, order], row[:, order]
                j = 0
        else:
            blank = _blank(1, n)
            if first:
                names = (source, *names)
                cols = np.concatenate([blank, cols], axis=1)
                row = np.concatenate([_MISSING[:, None], row], axis=1)
                j = 0
            else:
                names = (*names, source)
                cols = np.concatenate([cols, blank], axis=1)
                row = np.concatenate([row, _MISSING[:, None]], axis=1)
                j = len(names) - 1
        row = row.copy()
        row[:, j] = (float(score), 0.0, float(ref))
        ext = np.concatenate([cols, row[:, :, None]], axis=2)
        out = Candidates._of(
            np.append(items, item)[rows],
            np.append(self.scores, float(score))[rows],
            names,
            ext,
            self.adjustments,
            rows,
        )
        out.rest = self.rest
        return out


def _aligned(part: Candidates, names: tuple[str, ...]) -> np.ndarray:
    """`part`'s columns re-ordered to `names` (blank where it lacks a source). (3, S, n)."""
    if part.names == names:
        return part.columns
    out = _blank(len(names), len(part))
    for j, s in enumerate(part.names):
        out[:, names.index(s)] = part.columns[:, j]
    return out


def _union(parts: Sequence[Candidates]) -> tuple[str, ...]:
    names: list[str] = []
    for p in parts:
        names.extend(s for s in p.names if s not in names)
    return tuple(names)


def concat(
    parts: Sequence[Candidates], adjustments: dict[int, list[str]] | None = None
) -> Candidates:
    """Stack lists in order (no de-duplication); missing source columns become NaN / -1.

    The parts' adjustments are merged into a new dict, unless `adjustments` is given (then
    that dict is the result's, as is)."""
    parts = [p for p in parts if len(p)] or list(parts[:1]) or [Candidates.empty()]
    names = _union(parts)
    out = Candidates._of(
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.scores for p in parts]),
        names,
        np.concatenate([_aligned(p, names) for p in parts], axis=2),
        {},
    )
    if adjustments is not None:
        out.adjustments = adjustments
        return out
    for p in parts:
        for item, notes in p.adjustments.items():
            out.adjustments.setdefault(item, []).extend(notes)
    return out


def first_positions(a: np.ndarray) -> np.ndarray:
    """`np.unique(a, return_index=True)[1]`: where each distinct value first occurs, in
    value order, by one stable sort (`np.unique` costs several times more on the short
    arrays of a request). Shape (n_distinct,)."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.empty(len(s), bool)
    first[:1] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return order[first]


def unique_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(a, return_inverse=True)` for a request's few hundred ids, by one sort."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    new = np.empty(len(s), bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    inverse = np.empty(len(s), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], inverse


def merge(parts: Sequence[Candidates]) -> Candidates:
    """De-duplicate several sources' lists into one, one column per source.

    The merged `scores` are zero: ranking them is the ranker's job. Items come out in
    ascending index order. Where two parts bring the same source for an item, the later
    part's values are kept.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return Candidates.empty()
    uniq, inverse = unique_inverse(np.concatenate([p.items for p in parts]))
    names = _union(parts)
    m = _blank(len(names), len(uniq))
    if all(len(p.names) == 1 for p in parts) and len(names) == len(parts):
        # the usual case (one list per retriever): one scatter for all parts
        n = len(uniq)
        flat = np.repeat(np.arange(0, n * len(parts), n), [len(p) for p in parts]) + inverse
        data = np.concatenate([p.columns[:, 0] for p in parts], axis=1)
        planes = m.reshape(3, -1)  # (3, S * n) view: one 1-D scatter per plane is fastest
        for k in range(3):
            planes[k][flat] = data[k]
    else:
        offset = 0
        for p in parts:
            rows = inverse[offset : offset + len(p)]
            offset += len(p)
            for j, s in enumerate(p.names):
                m[:, names.index(s), rows] = p.columns[:, j]
    return Candidates._of(uniq, np.zeros(len(uniq)), names, m, {})
