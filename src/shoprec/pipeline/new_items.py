"""New products (no or few interactions) ranked by content similarity to the shopper's recent
items: the new-item side of cold start (`shoprec.pipeline.cold_start` wires it into a pipeline).
"""

from __future__ import annotations

import pickle
from typing import Any, Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.features.fusion import ContentEncoder
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.model_retrievers import (
    CLOSEST_RECENT,
    ClosestRecentEvidence,
    ContentRetriever,
)
from shoprec.pipeline.persist import register_retriever_kind
from shoprec.pipeline.request import Query
from shoprec.pipeline.retrievers import Retriever, top_n, verb
from shoprec.pipeline.rules import member, sorted_unique
from shoprec.pipeline.vector_index import VectorIndex, listed_candidates, neighbour_lists


class NewItemsRetriever(ClosestRecentEvidence, Retriever):
    """New items ranked by content similarity to the shopper's recent items.

    "New" is the catalog's `is_new` at fit time plus every item added later through
    `set_vectors`. With an empty history, new items come by similarity to the shop's most
    popular items (the typical product), so a brand-new shopper can still be shown them.
    Unavailable items are left to the pipeline's rules.

    With `neighbours` > 0, `build_neighbours` lists each item's most similar new items once
    (after `fit` and `share_index`), and a shopper with a history gets the union of their
    recent items' lists, scored exactly against the same profile, instead of a search;
    items posted or changed later are scored exactly on every request.
    """

    kind = "new_items"
    explain_by_ref = True

    def __init__(
        self,
        vectors: np.ndarray | None = None,
        name: str = "new_items",
        recent: int = 5,
        decay: float = 0.7,
        encoder: ContentEncoder | None = None,
        neighbours: int = 0,
    ):
        self.name = name
        self.recent = recent
        self.decay = decay
        self.neighbours = neighbours
        self.lists_: np.ndarray | None = None
        self.unlisted_ = np.zeros(0, np.int64)
        if vectors is not None:
            self.vectors_ = np.asarray(vectors, dtype=np.float32)
        self.encoder_ = encoder  # fitted ContentEncoder: vectors for posted items

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recent": self.recent,
            "decay": self.decay,
            "neighbours": self.neighbours,
        }

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        if not hasattr(self, "vectors_"):
            raise ValueError("NewItemsRetriever.fit: pass content vectors (see shoprec.features)")
        n = len(self.vectors_)
        self.is_new_ = np.zeros(n, bool)
        self.is_new_[: min(n, len(catalog.is_new))] = catalog.is_new[:n]
        pop = data.item_popularity()
        top = np.argsort(-pop)[:50]
        self.typical_ = self.vectors_[top[top < n]].mean(axis=0)
        self.lists_, self.unlisted_ = None, np.zeros(0, np.int64)  # is_new_ changed
        return self

    def build_neighbours(self, n: int | None = None) -> None:
        """List every item's `n` (default `neighbours`) most similar new items now, through
        the shared graph when there is one, else by an exact scan."""
        n = self.neighbours if n is None else n
        self.neighbours = n
        self.lists_, self.unlisted_ = None, np.zeros(0, np.int64)
        if n <= 0:
            return
        index = self._graph() or VectorIndex(self.vectors_, "exact")
        self.lists_ = neighbour_lists(index, n, allowed=self.is_new_)

    def _unlisted(self) -> np.ndarray:
        """New items the lists do not describe (posted or changed later), sorted."""
        rows = len(self.vectors_)
        listed = len(self.lists_) if self.lists_ is not None else rows
        extra = self.unlisted_
        if rows > listed:
            extra = np.union1d(extra, np.arange(listed, rows, dtype=np.int64))
        return extra[self.is_new_[extra]] if len(extra) else extra

    def set_vectors(self, vectors: np.ndarray, items: np.ndarray) -> None:
        """Set content vectors of `items`; indices past the end are new items."""
        items = np.asarray(items, np.int64)
        cur, new = self.vectors_, self.is_new_
        if items.max(initial=-1) >= len(cur):
            size = int(items.max()) + 1
            grown = np.zeros((size, cur.shape[1]), np.float32)
            grown[: len(cur)] = cur
            new = np.concatenate([new, np.ones(size - len(new), bool)])
            cur = grown
        else:
            cur = cur.copy()
        cur[items] = vectors
        self.vectors_, self.is_new_ = cur, new
        if self.lists_ is not None:
            self.unlisted_ = np.union1d(self.unlisted_, items)

    def state(self) -> dict[str, np.ndarray]:
        st = {"vectors": self.vectors_, "typical": self.typical_, "is_new": self.is_new_}
        if self.lists_ is not None:
            st["lists"] = self.lists_
            st["unlisted"] = self.unlisted_
        if self.encoder_ is not None:  # the encoder travels with the artifact, as bytes
            st["encoder"] = np.frombuffer(pickle.dumps(self.encoder_), dtype=np.uint8)
        return st

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_, self.typical_, self.is_new_ = (
            state["vectors"],
            state["typical"],
            state["is_new"],
        )
        self.lists_ = state.get("lists")
        self.unlisted_ = np.asarray(state.get("unlisted", np.zeros(0)), np.int64)
        if "encoder" in state:
            self.encoder_ = pickle.loads(state["encoder"].tobytes())

    def share_index(self, content: ContentRetriever | None) -> None:
        """Search through `content`'s HNSW graph (built on the same unit-length vectors),
        restricted to new items, instead of scanning every new item (None: scan)."""
        self.shared_ = content

    def _graph(self) -> VectorIndex | None:
        shared = getattr(self, "shared_", None)
        index = shared.index_ if shared is not None else None
        if index is None or index.graph is None or len(index.vectors) < len(self.vectors_):
            return None
        return index

    def _new_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The new items and their vectors as one contiguous matrix, rebuilt only when the
        vectors or the new-item flags are replaced (a scan then reads no copied rows)."""
        cached = getattr(self, "_rows", None)
        if cached is None or cached[0] is not self.vectors_ or cached[1] is not self.is_new_:
            new = np.flatnonzero(self.is_new_)
            new = new[new < len(self.vectors_)]
            cached = (self.vectors_, self.is_new_, new, np.ascontiguousarray(self.vectors_[new]))
            self._rows = cached
        return cached[2], cached[3]

    def _new_bits(self) -> np.ndarray:
        """`is_new_` packed for the graph's filter, rebuilt when `is_new_` is replaced."""
        cached = getattr(self, "_bits", None)
        if cached is None or cached[0] is not self.is_new_:
            cached = (self.is_new_, np.packbits(self.is_new_, bitorder="little"))
            self._bits = cached
        return cached[1]

    def retrieve(self, query: Query, n: int) -> Candidates:
        vec = self.vectors_
        seeds = query.recent(self.recent)
        seeds = seeds[seeds < len(vec)]
        if len(seeds):
            w = self.decay ** np.arange(len(seeds), dtype=np.float32)
            q = w @ vec[seeds]
        else:
            q = self.typical_
        index = self._graph()
        cand = None
        if self.lists_ is not None and len(seeds):
            removed = sorted_unique(np.concatenate([query.history, query.excluded]))
            cand = listed_candidates(self.lists_, seeds, self._unlisted(), removed)
        if cand is not None:
            all_scores = vec[cand] @ q
            o = top_n(all_scores, n)
            items, scores = cand[o], all_scores[o]
        elif index is not None:
            is_new = self.is_new_
            exclude = sorted_unique(np.concatenate([query.history, query.excluded]))
            items, scores = index.search(q, n, exclude, is_new, self._new_bits())
            items = items[items < len(is_new)]
            scores = scores[: len(items)]
        else:
            new, matrix = self._new_rows()
            all_scores = matrix @ q
            removed = sorted_unique(np.concatenate([query.history, query.excluded]))
            all_scores[member(new, removed)] = -np.inf
            o = top_n(all_scores, n)
            items, scores = new[o], all_scores[o]
        if len(items) == 0:
            return Candidates.empty()
        # evidence: the closest recent item, resolved in `explain` for the shown items only
        ev = np.full(len(items), CLOSEST_RECENT if len(seeds) else -1, np.int64)
        return Candidates.from_source(self.name, items, scores, ev)

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        ref = self.closest_ref(ref, item, query)
        if ref < 0:
            return "new in the shop"
        how = verb(query.event_type_of(ref)) if query is not None else "liked"
        return f"new, and like {catalog.title(ref)}, which you {how}"


register_retriever_kind(NewItemsRetriever.kind, NewItemsRetriever)
