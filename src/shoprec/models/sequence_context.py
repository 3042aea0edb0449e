"""What the training sequences say about a candidate beyond the members' scores.

`SequenceContext` holds per-item statistics of the training sequences (overall popularity,
how often an item *ends* a sequence or sits among its last three items, its mean relative
position) and the raw item -> next-item transition counts, plus the catalog's tags. A
learning-to-rank model uses them as candidate features next to the members' scores:

- recency: items that end many sequences, or sit late in them, are the ones shoppers are
  moving to now (sequences are in time order, so this is a time signal even without
  timestamps);
- transitions: how often the candidate directly followed (or preceded) the last item, and
  followed any of the last five;
- catalog: how many tags the candidate shares with the last item;
- the shopper: mean popularity of the history and of its last item (how mainstream they are).

Everything is computed from the data the members were fitted on, so validation and test
targets never leak into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shoprec.data.interactions import InteractionData, histories_to_csr
from shoprec.models.torch_base import tag_csr

FEATURES: tuple[str, ...] = (
    "log_popularity",
    "log_last_count",
    "log_last3_count",
    "mean_position",
    "log_transitions_from_last",
    "log_transitions_to_last",
    "log_transitions_from_last5",
    "shared_tags_with_last",
    "history_mean_popularity",
    "last_item_popularity",
)
"""Column names of `SequenceContext.features`, in order."""

_RECENT = 5


@dataclass(eq=False)
class SequenceContext:
    """Per-item statistics and transitions of a set of training sequences.

    Attributes
    ----------
    log_popularity, log_last_count, log_last3_count : np.ndarray, shape (n_items,)
        log(1 + count) of all occurrences, of sequence ends, of the last three positions.
    mean_position : np.ndarray, shape (n_items,)
        Mean of position / (length - 1) over the item's occurrences; -1 for unseen items.
    transitions : sp.csr_matrix, shape (n_items, n_items)
        transitions[i, j] = times j directly followed i.
    tags : sp.csr_matrix, shape (n_items, n_tags)
        0/1 catalog tags (one empty column when the catalog has none).
    """

    log_popularity: np.ndarray
    log_last_count: np.ndarray
    log_last3_count: np.ndarray
    mean_position: np.ndarray
    transitions: sp.csr_matrix
    tags: sp.csr_matrix

    @classmethod
    def from_data(cls, data: InteractionData) -> SequenceContext:
        n = data.n_items
        seqs = [s for s in data.sequences() if len(s)]
        count = np.bincount(data.item_idx, minlength=n).astype(np.float64)
        if seqs:
            lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
            flat = np.concatenate(seqs).astype(np.int64)
            pos = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            from_end = np.repeat(lengths, lengths) - 1 - pos
            rel = pos / np.maximum(np.repeat(lengths, lengths) - 1, 1)
            last = np.bincount(flat[from_end == 0], minlength=n)
            last3 = np.bincount(flat[from_end < 3], minlength=n)
            pos_sum = np.bincount(flat, weights=rel, minlength=n)
            occ = np.bincount(flat, minlength=n)
            nxt = from_end > 0  # positions that have a successor
            src, dst = flat[nxt], flat[np.flatnonzero(nxt) + 1]
        else:
            last = last3 = occ = np.zeros(n)
            pos_sum = np.zeros(n)
            src = dst = np.zeros(0, np.int64)
        transitions = sp.csr_matrix(
            (np.ones(len(src), np.float32), (src, dst)), shape=(n, n), dtype=np.float32
        )
        transitions.sum_duplicates()
        indptr, indices, n_tags = tag_csr(data)
        tags = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, indptr), shape=(n, max(n_tags, 1))
        )
        f32 = np.float32
        return cls(
            np.log1p(count).astype(f32),
            np.log1p(last).astype(f32),
            np.log1p(last3).astype(f32),
            np.where(occ > 0, pos_sum / np.maximum(occ, 1), -1.0).astype(f32),
            transitions,
            tags,
        )

    @cached_property
    def transitions_t(self) -> sp.csr_matrix:
        """transitions transposed: row i = the items i directly followed."""
        return sp.csr_matrix(self.transitions.T)

    @property
    def n_items(self) -> int:
        return len(self.log_popularity)

    def features(self, histories: Sequence[np.ndarray], cand: np.ndarray) -> list[np.ndarray]:
        """One (B, C) float32 column per name of `FEATURES` for candidates `cand` (B, C)."""
        b, c = cand.shape
        n = self.n_items
        last = np.array([h[-1] if len(h) else -1 for h in histories], np.int64)
        has_last = last >= 0
        last_safe = np.where(has_last, last, 0)
        cols = [
            self.log_popularity[cand],
            self.log_last_count[cand],
            self.log_last3_count[cand],
            self.mean_position[cand],
        ]

        row_of = np.repeat(np.arange(b), c)

        def at_candidates(rows: sp.spmatrix) -> np.ndarray:
            """Entries (r, cand[r, j]) of a sparse (B, n_items) matrix, without densifying."""
            out = np.asarray(sp.csr_matrix(rows)[row_of, cand.ravel()]).reshape(b, c)
            out = out.astype(np.float32)
            out[~has_last] = 0.0
            return out

        cols.append(np.log1p(at_candidates(self.transitions[last_safe])))
        cols.append(np.log1p(at_candidates(self.transitions_t[last_safe])))
        recent = histories_to_csr([np.asarray(h[-_RECENT:]) for h in histories], n)
        recent.data[:] = 1.0
        cols.append(np.log1p(at_candidates(recent @ self.transitions)))
        cols.append(at_candidates(self.tags[last_safe] @ self.tags.T))
        mean_pop = np.array(
            [
                self.log_popularity[np.asarray(h, np.int64)].mean() if len(h) else 0.0
                for h in histories
            ],
            np.float32,
        )
        last_pop = np.where(has_last, self.log_popularity[last_safe], 0.0).astype(np.float32)
        cols.append(np.repeat(mean_pop[:, None], c, axis=1))
        cols.append(np.repeat(last_pop[:, None], c, axis=1))
        assert len(cols) == len(FEATURES) and cols[0].shape == (b, c)
        return [np.asarray(col, np.float32) for col in cols]

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Folder: items.npz (the per-item arrays), transitions.npz and tags.npz (sparse)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(
            path / "items.npz",
            log_popularity=self.log_popularity,
            log_last_count=self.log_last_count,
            log_last3_count=self.log_last3_count,
            mean_position=self.mean_position,
        )
        sp.save_npz(path / "transitions.npz", self.transitions)
        sp.save_npz(path / "tags.npz", self.tags)

    @classmethod
    def load(cls, path: str | Path) -> SequenceContext:
        path = Path(path)
        items = np.load(path / "items.npz")
        return cls(
            items["log_popularity"],
            items["log_last_count"],
            items["log_last3_count"],
            items["mean_position"],
            sp.load_npz(path / "transitions.npz").tocsr(),
            sp.load_npz(path / "tags.npz").tocsr(),
        )
