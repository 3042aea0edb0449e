"""Inner-product search over item vectors: an exact scan, or a faiss HNSW graph for large catalogs.

`VectorIndex` is what the vector retrievers (`ContentRetriever`, `NewItemsRetriever`) search.
``exact`` multiplies the whole matrix by the query (cost grows with items x dimensions: about
5 ms for 100k x 64 on one core); ``hnsw`` walks a hierarchical navigable small-world graph
(Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs", TPAMI 2018; faiss' `IndexHNSWFlat`), about 1 ms
for 1M items, approximate. ``auto`` picks ``hnsw`` from `ann_min_items` rows on.

Rows changed after the graph was built (a posted item's new content vector) are "stale": the
graph's answer for them is dropped and they are scored exactly instead, so an update counts
on the next request without rebuilding the graph.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from shoprec.pipeline.retrievers import top_n
from shoprec.pipeline.rules import member, sorted_unique

log = logging.getLogger("shoprec.pipeline.vector_index")

INDEX_KINDS = ("auto", "exact", "hnsw")
ANN_MIN_ITEMS = 50_000


def resolve_kind(kind: str, n_rows: int, ann_min_items: int = ANN_MIN_ITEMS) -> str:
    """``exact`` or ``hnsw`` for a matrix of `n_rows` rows (``auto``: hnsw from
    `ann_min_items` rows on); ValueError for an unknown kind."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"vector index: one of {INDEX_KINDS}, got {kind!r}")
    if kind == "auto":
        return "hnsw" if n_rows >= ann_min_items else "exact"
    return kind


class VectorIndex:
    """Search rows of `vectors` by inner product with a query.

    Parameters
    ----------
    vectors : np.ndarray, shape (n, d)
        Kept as C-contiguous float32 (not copied when it already is); never changed in place.
    kind : {"exact", "hnsw"}
    m, ef_construction, ef_search : int
        HNSW graph degree, build-time and search-time beam widths (ef_search is raised to the
        number of results asked for).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        kind: str = "exact",
        m: int = 16,
        ef_construction: int = 40,
        ef_search: int = 256,
    ):
        if kind not in ("exact", "hnsw"):
            raise ValueError(f"VectorIndex: kind 'exact' or 'hnsw', got {kind!r}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind = kind
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.graph: Any = None
        self.stale = np.zeros(0, np.int64)  # rows the graph does not describe (sorted)
        self._lock = threading.Lock()
        if kind == "hnsw":
            self.graph = self._build(self.vectors)

    # ------------------------------------------------------------------ building
    def _build(self, vectors: np.ndarray) -> Any:
        import faiss

        t = time.perf_counter()
        graph = faiss.IndexHNSWFlat(vectors.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.ef_construction
        graph.add(vectors)
        log.info("built HNSW over %d x %d in %.1fs", *vectors.shape, time.perf_counter() - t)
        return graph

    def to_bytes(self) -> np.ndarray | None:
        """The graph as a uint8 array (for `np.savez`); None for an exact index."""
        if self.graph is None:
            return None
        import faiss

        return faiss.serialize_index(self.graph)

    @classmethod
    def from_bytes(
        cls, vectors: np.ndarray, blob: np.ndarray, ef_search: int = 256, stale: Any = None
    ) -> VectorIndex:
        """An HNSW index from `to_bytes` output and the vectors it was built on (or later
        ones: rows past the graph count as stale)."""
        import faiss

        obj = cls(vectors, "exact", ef_search=ef_search)
        obj.kind = "hnsw"
        obj.graph = faiss.deserialize_index(np.asarray(blob, np.uint8))
        obj.m = int(obj.graph.hnsw.nb_neighbors(1))
        rows = np.arange(obj.graph.ntotal, len(obj.vectors), dtype=np.int64)
        extra = np.asarray(stale if stale is not None else [], np.int64)
        obj.stale = np.union1d(rows, extra)
        return obj

    def update(self, items: np.ndarray, rows: np.ndarray) -> None:
        """Set rows `items` to `rows` (growing the matrix for new items); a new matrix is
        swapped in, so running searches keep a consistent one."""
        items = np.asarray(items, np.int64)
        rows = np.asarray(rows, np.float32)
        with self._lock:
            cur = self.vectors
            size = max(len(cur), int(items.max(initial=-1)) + 1)
            grown = np.zeros((size, cur.shape[1]), np.float32)
            grown[: len(cur)] = cur
            grown[items] = rows
            if self.graph is not None:
                self.stale = np.union1d(self.stale, items)
            self.vectors = grown

    # ------------------------------------------------------------------ searching
    def search(
        self,
        q: np.ndarray,
        n: int,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        allowed_bits: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `n` rows with the largest inner product with `q`, best first.

        Parameters
        ----------
        q : np.ndarray, shape (d,)
        exclude : np.ndarray of int, optional
            Rows never returned (the shopper's history).
        allowed : np.ndarray of bool, shape (n_rows,), optional
            Only these rows may be returned.
        allowed_bits : np.ndarray of uint8, optional
            `allowed` packed little-endian (`np.packbits(allowed, bitorder="little")`), for the
            graph's filter; packed here when not given.

        Returns
        -------
        items : np.ndarray, shape (<= n,), int64
        scores : np.ndarray, shape (<= n,), float32
        """
        vectors, stale, graph = self.vectors, self.stale, self.graph
        exclude = np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, np.int64)
        q = np.ascontiguousarray(q, dtype=np.float32)
        if graph is None:
            scores = vectors @ q
            if allowed is not None:
                scores[~allowed[: len(scores)]] = -np.inf
                if len(allowed) < len(scores):
                    scores[len(allowed) :] = -np.inf
            scores[exclude[(exclude >= 0) & (exclude < len(scores))]] = -np.inf
            o = top_n(scores, n)
            return o, scores[o]
        return self._search_graph(graph, vectors, stale, q, n, exclude, allowed, allowed_bits)

    def _search_graph(
        self,
        graph: Any,
        vectors: np.ndarray,
        stale: np.ndarray,
        q: np.ndarray,
        n: int,
        exclude: np.ndarray,
        allowed: np.ndarray | None,
        allowed_bits: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        # ask for enough that dropping excluded and stale rows still leaves n
        k = min(n + len(exclude) + min(len(stale), n), graph.ntotal)
        if k <= 0:
            items, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        else:
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, k)
            if allowed is not None:
                if allowed_bits is None:
                    allowed_bits = np.packbits(allowed, bitorder="little")
                sel = faiss.IDSelectorBitmap(
                    min(graph.ntotal, len(allowed_bits) * 8), faiss.swig_ptr(allowed_bits)
                )
                params.sel = sel
            scores, items = graph.search(q[None, :], k, params=params)
            items, scores = items[0], scores[0]
            keep = items >= 0
            if len(exclude):
                keep &= ~member(items, np.sort(exclude))
            if len(stale):
                keep &= ~member(items, stale)
            items, scores = items[keep].astype(np.int64), scores[keep]
        if len(stale):  # rows the graph does not know (or knows outdated): scored exactly
            rows = stale[stale < len(vectors)]
            if allowed is not None:
                rows = rows[(rows < len(allowed)) & allowed[np.minimum(rows, len(allowed) - 1)]]
            if len(exclude):
                rows = rows[~member(rows, np.sort(exclude))]
            if len(rows):
                items = np.concatenate([items, rows])
                scores = np.concatenate([scores, vectors[rows] @ q])
                o = top_n(scores, n)
                return items[o], scores[o]
        return items[:n], scores[:n]


# ---------------------------------------------------------------------- neighbour lists
def neighbour_lists(
    index: VectorIndex,
    n: int,
    allowed: np.ndarray | None = None,
    ef_search: int = 128,
    batch: int = 1024,
) -> np.ndarray:
    """Every row's `n` nearest rows (inner product, itself left out), best first, computed
    once at training time so that a request merges lists instead of searching.

    An HNSW index answers with a batch graph search (beam `max(ef_search, n + 1)`), an exact
    one with blocked matrix products. `allowed` (bool, shape (n_rows,)) restricts the
    neighbours (e.g. to new items). Returns shape (n_rows, n), int32, -1 where a row has
    fewer neighbours.
    """
    import faiss

    vectors = index.vectors
    rows = len(vectors)
    out = np.full((rows, n), -1, np.int32)
    if rows == 0 or n <= 0:
        return out
    if allowed is not None:
        allowed = np.asarray(allowed, bool)[:rows]
        allowed = np.concatenate([allowed, np.zeros(rows - len(allowed), bool)])
    t = time.perf_counter()
    graph = index.graph
    if graph is not None:
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef_search, n + 1)
        if allowed is not None:
            bits = np.packbits(allowed[: graph.ntotal], bitorder="little")
            params.sel = faiss.IDSelectorBitmap(graph.ntotal, faiss.swig_ptr(bits))
        for start in range(0, rows, batch):
            q = vectors[start : start + batch]
            _, found = graph.search(q, n + 1, params=params)
            own = np.arange(start, start + len(q))[:, None]
            found = np.where(found == own, -1, found)
            # keep the order, drop self and misses: a stable sort moving -1s to the end
            order = np.argsort(found < 0, axis=1, kind="stable")
            out[start : start + len(q)] = np.take_along_axis(found, order, axis=1)[:, :n]
    else:
        cols = np.flatnonzero(allowed) if allowed is not None else np.arange(rows)
        matrix = np.ascontiguousarray(vectors[cols])
        k = min(n, len(cols))
        if k == 0:  # nothing may be listed (e.g. no new items)
            return out
        step = max(1, min(batch, (1 << 24) // max(len(cols), 1)))  # ~64 MB of scores a block
        for start in range(0, rows, step):
            s = vectors[start : start + step] @ matrix.T
            own = np.arange(start, start + len(s))
            pos = np.searchsorted(cols, own)
            hit = (pos < len(cols)) & (cols[np.minimum(pos, len(cols) - 1)] == own)
            s[np.flatnonzero(hit), pos[hit]] = -np.inf
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            ps = np.take_along_axis(s, part, axis=1)
            o = np.argsort(-ps, axis=1, kind="stable")
            best = np.take_along_axis(part, o, axis=1)
            found = cols[best].astype(np.int32)
            found[~np.isfinite(np.take_along_axis(ps, o, axis=1))] = -1
            out[start : start + len(s), :k] = found
    log.info("neighbour lists %d x %d in %.1fs", rows, n, time.perf_counter() - t)
    return out


def listed_candidates(
    lists: np.ndarray, seeds: np.ndarray, extra: np.ndarray, removed: np.ndarray
) -> np.ndarray | None:
    """The union of the seeds' neighbour lists plus `extra` rows (those the lists do not
    describe), less `removed` (sorted), as sorted int64; None when a seed has no list (it is
    past the lists or in `extra`): the caller then searches."""
    if len(seeds) == 0 or seeds.max() >= len(lists) or (len(extra) and member(seeds, extra).any()):
        return None
    cand = lists[seeds].ravel()
    cand = cand[cand >= 0].astype(np.int64)
    if len(extra):
        cand = np.concatenate([cand, extra])
    cand = sorted_unique(cand)
    if len(removed):
        cand = cand[~member(cand, removed)]
    return cand
