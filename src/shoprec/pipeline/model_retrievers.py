"""Retrievers backed by a trained model or by item vectors.

- `ModelRetriever` wraps any `Recommender` from the model registry (a sequence model such as
  `sasrec`, collaborative filtering such as `ease`, `als`, `itemknn`): it scores the whole
  catalog for the shopper's history and keeps the top n.
- `ContentRetriever` takes any item-vector matrix (text or image embeddings from the
  cold-start work, or a model's item factors) and retrieves by similarity to the shopper's
  recent items, so a new item with content can be found before anyone interacted with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet
from shoprec.models.base import Recommender
from shoprec.models.registry import create, model_class
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.request import Query
from shoprec.pipeline.retrievers import Retriever, top_n, verb
from shoprec.pipeline.vector_index import (
    ANN_MIN_ITEMS,
    VectorIndex,
    listed_candidates,
    neighbour_lists,
    resolve_kind,
)

CLOSEST_RECENT = -2  # evidence: "the shopper's recent item closest to this one", see below


def closest_recent(vectors: np.ndarray, seeds: np.ndarray, item: int) -> int:
    """The seed (recent history item) whose vector is most similar to `item`'s; -1 if none.

    Vector retrievers record `CLOSEST_RECENT` as evidence and resolve it here, in `explain`,
    only for the items a response shows."""
    seeds = seeds[seeds < len(vectors)]
    if len(seeds) == 0 or not 0 <= item < len(vectors):
        return -1
    return int(seeds[np.argmax(vectors[seeds] @ vectors[item])])


def resolve_closest(
    vectors: np.ndarray, seeds: np.ndarray, refs: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """`refs` with every `CLOSEST_RECENT` replaced by the item's closest seed (-1 if none),
    in one product for the shown items. Shapes (n,), (n,) -> (n,)."""
    todo = np.flatnonzero((refs == CLOSEST_RECENT) & (items < len(vectors)))
    if len(todo) == 0:
        return refs
    refs = refs.copy()
    seeds = seeds[seeds < len(vectors)]
    if len(seeds) == 0:
        refs[todo] = -1
        return refs
    refs[todo] = seeds[np.argmax(vectors[items[todo]] @ vectors[seeds].T, axis=1)]
    return refs


_SEQUENTIAL_HINTS = ("sasrec", "bert4rec", "gru4rec", "caser", "sequen", "best")


class ModelRetriever(Retriever):
    """A registry model as a recall source.

    Parameters
    ----------
    model : str
        Registry name ("sasrec", "ease", "als", ...).
    params : dict
        Constructor keyword arguments of the model.
    name : str
        Source name (defaults to the model name).
    max_history : int
        Most recent items passed to the model.
    """

    kind = "model"
    explain_by_ref = True

    def __init__(
        self,
        model: str,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        max_history: int = 50,
    ):
        self.model = model
        self.model_params = dict(params or {})
        self.name = name or model
        self.max_history = max_history
        self.recommender_: Recommender | None = None

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.model_params,
            "name": self.name,
            "max_history": self.max_history,
        }

    @classmethod
    def from_model(cls, recommender: Recommender, name: str, max_history: int = 50) -> Self:
        """Wrap an already fitted model (tests, notebooks)."""
        obj = cls(getattr(recommender, "name", name), recommender.get_params(), name, max_history)
        obj.recommender_ = recommender
        return obj

    def fit(
        self, data: InteractionData, catalog: CatalogView, valid: EvalSet | None = None
    ) -> Self:
        self.recommender_ = create(self.model, **self.model_params).fit(data, valid)
        return self

    def _scores(self, histories: list[np.ndarray]) -> np.ndarray:
        if self.recommender_ is None:
            raise RuntimeError(f"retriever {self.name!r} has no fitted model")
        return np.asarray(self.recommender_.score(histories), dtype=np.float32)

    def retrieve(self, query: Query, n: int) -> Candidates:
        hist = query.history[-self.max_history :]
        if self.recommender_ is None or len(hist) == 0:
            return Candidates.empty()  # cold start is the trending source's job
        n_model = self._n_items()
        hist = hist[hist < n_model]
        if len(hist) == 0:
            return Candidates.empty()
        scores = self._scores([hist])[0].copy()
        scores[hist] = -np.inf  # the shopper has them; rules would drop them anyway
        o = top_n(scores, n)
        return Candidates.from_source(self.name, o, scores[o])

    def _n_items(self) -> int:
        rec = self.recommender_
        for attr in ("n_items_", "n_items"):
            v = getattr(rec, attr, None)
            if isinstance(v, int | np.integer):
                return int(v)
        return 1 << 62

    def similar(self, item: int, n: int) -> Candidates:
        if self.recommender_ is None or item >= self._n_items():
            return Candidates.empty()
        idx, sc = self.recommender_.similar_items(np.array([item]), n)
        keep = np.isfinite(sc[0]) & (idx[0] != item)
        return Candidates.from_source(self.name, idx[0][keep], sc[0][keep])

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        if query is None or len(query.history) == 0:
            return f"similar according to {self.name}"
        last = int(query.history[-1])
        if any(h in self.model.lower() for h in _SEQUENTIAL_HINTS):
            return (
                f"a likely next step after {catalog.title(last)}, which you "
                f"{verb(query.history_types[-1])} ({self.name})"
            )
        return f"shoppers with tastes like yours chose it ({self.name})"

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(
            json.dumps({"kind": self.kind, **self.params()}, default=str)
        )
        if self.recommender_ is not None:
            self.recommender_.save(path / "model")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        params = json.loads((path / "params.json").read_text())
        params.pop("kind", None)
        obj = cls(**params)
        if (path / "model").exists():
            obj.recommender_ = model_class(obj.model).load(path / "model")
        return obj


class ClosestRecentEvidence:
    """Evidence "the shopper's recent item closest to this one" (`CLOSEST_RECENT`), resolved
    for the shown items only, for retrievers with item `vectors_` and a `recent` window."""

    vectors_: np.ndarray
    recent: int

    def resolve_evidence(
        self, refs: np.ndarray, items: np.ndarray, query: Query | None
    ) -> np.ndarray:
        if query is None:
            return refs
        return resolve_closest(self.vectors_, query.recent(self.recent), refs, items)

    def closest_ref(self, ref: int, item: int, query: Query | None) -> int:
        """`ref`, with `CLOSEST_RECENT` replaced by the closest recent item (-1: none)."""
        if ref != CLOSEST_RECENT:
            return ref
        return closest_recent(self.vectors_, query.recent(self.recent), item) if query else -1


class ContentRetriever(ClosestRecentEvidence, Retriever):
    """Similarity of item vectors to the shopper's recent items (cosine).

    Parameters
    ----------
    vectors : np.ndarray, shape (n_items, d)
        One row per item index; all-zero rows mean "no content".
    name : str
    recent : int
        Recent history items that form the shopper's profile (more recent weigh more).
    index : {"auto", "exact", "hnsw"}
        How to search the vectors (`shoprec.pipeline.vector_index`): a scan of all rows, a
        faiss HNSW graph (approximate, about 1 ms at 1M items), or hnsw from `ann_min_items`
        rows on. Decided when the vectors are set; an artifact keeps the decision.
    ann_min_items : int
    hnsw_m, ef_search : int
        HNSW graph degree and search beam width.
    neighbours : int
        When > 0, each item's `neighbours` most similar items are listed once, when the
        vectors are set (training), and a request scores only the union of its recent items'
        lists (exactly, against the same recency-weighted profile) instead of searching the
        whole catalog. Items whose vectors changed later, or were added, have no list: they
        are scored exactly on every request, and a shopper whose recent items include one is
        searched as without lists. 0: search on every request.
    """

    kind = "content"
    explain_by_ref = True

    def __init__(
        self,
        vectors: np.ndarray | None = None,
        name: str = "content",
        recent: int = 5,
        decay: float = 0.7,
        index: str = "auto",
        ann_min_items: int = ANN_MIN_ITEMS,
        hnsw_m: int = 16,
        ef_search: int = 256,
        neighbours: int = 0,
    ):
        self.name = name
        self.recent = recent
        self.decay = decay
        self.index = index
        self.ann_min_items = ann_min_items
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.neighbours = neighbours
        self.lists_: np.ndarray | None = None
        self.unlisted_ = np.zeros(0, np.int64)  # rows the lists do not describe (sorted)
        if vectors is not None:
            self.set_vectors(vectors)

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recent": self.recent,
            "decay": self.decay,
            "index": self.index,
            "ann_min_items": self.ann_min_items,
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "neighbours": self.neighbours,
        }

    @property
    def vectors_(self) -> np.ndarray:
        """The unit-length item vectors, shape (n_items, d)."""
        return self.index_.vectors

    def set_vectors(self, vectors: np.ndarray, items: np.ndarray | None = None) -> None:
        """Replace all vectors, or set rows `items` (growing the matrix for new items)."""
        v = np.asarray(vectors, dtype=np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        if items is None:
            kind = resolve_kind(self.index, len(v), self.ann_min_items)
            self.index_ = VectorIndex(v, kind, m=self.hnsw_m, ef_search=self.ef_search)
            self.lists_, self.unlisted_ = None, np.zeros(0, np.int64)
            if self.neighbours > 0:
                self.build_neighbours()
            return
        # replaced, not mutated: readers keep a consistent matrix
        items = np.asarray(items, np.int64)
        self.index_.update(items, v)
        if self.lists_ is not None:  # their lists (and their place in others') are outdated
            self.unlisted_ = np.union1d(self.unlisted_, items)

    def build_neighbours(self, n: int | None = None) -> None:
        """List every item's `n` (default `neighbours`) most similar items now."""
        n = self.neighbours if n is None else n
        self.neighbours = n
        self.lists_ = neighbour_lists(self.index_, n) if n > 0 else None
        self.unlisted_ = np.zeros(0, np.int64)

    def _unlisted(self) -> np.ndarray:
        """Rows scored exactly on every request: changed after the lists, or added."""
        rows = len(self.vectors_)
        listed = len(self.lists_) if self.lists_ is not None else rows
        if rows <= listed:
            return self.unlisted_
        return np.union1d(self.unlisted_, np.arange(listed, rows, dtype=np.int64))

    def state(self) -> dict[str, np.ndarray]:
        st = {"vectors": self.vectors_}
        graph = self.index_.to_bytes()
        if graph is not None:
            st["hnsw"] = graph
            st["stale"] = self.index_.stale
        if self.lists_ is not None:
            st["lists"] = self.lists_
            st["unlisted"] = self._unlisted()
        return st

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        vectors = np.asarray(state["vectors"], np.float32)
        if "hnsw" in state:
            self.index_ = VectorIndex.from_bytes(
                vectors, state["hnsw"], self.ef_search, state.get("stale")
            )
        elif self.index == "hnsw":  # asked for explicitly: build it now
            self.index_ = VectorIndex(vectors, "hnsw", m=self.hnsw_m, ef_search=self.ef_search)
        else:  # an artifact saved without a graph keeps its exact scan
            self.index_ = VectorIndex(vectors, "exact")
        self.lists_ = state.get("lists")
        self.unlisted_ = np.asarray(state.get("unlisted", np.zeros(0)), np.int64)

    def _query_vector(self, seeds: np.ndarray) -> np.ndarray | None:
        vec = self.vectors_
        seeds = seeds[seeds < len(vec)]
        if len(seeds) == 0:
            return None
        w = self.decay ** np.arange(len(seeds), dtype=np.float32)
        q = (vec[seeds] * w[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0 else None

    def _search(self, q: np.ndarray, n: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.search(q, n, exclude)

    def retrieve(self, query: Query, n: int) -> Candidates:
        seeds = query.recent(self.recent)
        q = self._query_vector(seeds)
        if q is None:
            return Candidates.empty()
        cand = None
        if self.lists_ is not None:
            cand = listed_candidates(self.lists_, seeds, self._unlisted(), np.sort(query.history))
        if cand is not None:
            all_scores = self.vectors_[cand] @ q
            o = top_n(all_scores, n)
            items, scores = cand[o], all_scores[o]
        else:
            items, scores = self._search(q, n, query.history)
        # evidence: the recent item each candidate is closest to, worked out in `explain` for
        # the few items that are shown rather than here for every candidate
        evidence = np.full(len(items), CLOSEST_RECENT, np.int64)
        return Candidates.from_source(self.name, items, scores, evidence)

    def similar(self, item: int, n: int) -> Candidates:
        if item >= len(self.vectors_) or not self.vectors_[item].any():
            return Candidates.empty()
        items, scores = self._search(self.vectors_[item], n, np.array([item]))
        return Candidates.from_source(self.name, items, scores, np.full(len(items), item))

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        ref = self.closest_ref(ref, item, query)
        if ref < 0:
            return "similar in content"
        if query is None:
            return f"similar to {catalog.title(ref)}"
        return f"similar to {catalog.title(ref)}, which you {verb(query.event_type_of(ref))}"
