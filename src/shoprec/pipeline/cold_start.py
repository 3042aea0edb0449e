"""Cold-start sources, as ordinary retrievers.

- `OnboardingRetriever`: what a shopper with no (or almost no) history sees: items popular in
  their segment (user attributes such as age band or gender, when known), items of the
  categories they said they like (`context["interests"]`), and the shop's popular items
  spread across categories, so a first page is not ten items of one kind.
- `NewItemsRetriever` (`shoprec.pipeline.new_items`): new products ranked by content
  similarity to the shopper's recent items, wired in here by `attach_cold_start`.

`SegmentPopularity` and `diversified_popular` are plain functions of the data that the
cold-user evaluation uses too. A shopper's first events need no retraining: history-in models
(`ModelRetriever`) and the content retrievers read them on every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.features.fusion import ContentEncoder, items_frame
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.model_retrievers import (
    ContentRetriever,
)
from shoprec.pipeline.new_items import NewItemsRetriever
from shoprec.pipeline.persist import register_retriever_kind
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.request import Query
from shoprec.pipeline.retrievers import Retriever
from shoprec.types import Item

AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens' age groups


def segment_value(column: str, value: Any) -> str:
    """The segment a raw attribute value falls in (numeric ages become age bands)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if column.startswith("age"):
        try:
            age = float(value)
        except (TypeError, ValueError):
            return str(value)
        return f"age<{next((e for e in AGE_EDGES if age < e), 'inf')}"
    return str(value)


class SegmentPopularity:
    """Item popularity within user segments, shrunk towards global popularity.

    For each attribute column, the share of the segment's interactions that went to each
    item, smoothed as (count + m * global_share) / (segment_total + m); a user's score is the
    mean over the columns whose value is known (global share when none is).

    Parameters
    ----------
    columns : sequence of str or None
        User-table columns to segment by (None: every column but user_id).
    smoothing : float
        m above, in interactions.
    """

    def __init__(self, columns: Sequence[str] | None = None, smoothing: float = 50.0):
        self.columns = columns
        self.smoothing = smoothing

    def fit(self, data: InteractionData) -> Self:
        pop = data.item_popularity()
        self.global_ = pop / max(pop.sum(), 1.0)
        self.tables_: dict[str, dict[str, np.ndarray]] = {}
        ut = data.user_table
        if ut is None:
            return self
        cols = (
            list(self.columns)
            if self.columns is not None
            else [c for c in ut.columns if c != "user_id"]
        )
        for col in cols:
            if col not in ut.columns:
                continue
            seg = np.array([segment_value(col, v) for v in ut[col].tolist()], dtype=object)
            user_seg = seg[data.user_idx]
            table: dict[str, np.ndarray] = {}
            for value in np.unique(seg):
                if value == "":
                    continue
                counts = np.bincount(data.item_idx[user_seg == value], minlength=data.n_items)
                table[value] = (counts + self.smoothing * self.global_) / (
                    counts.sum() + self.smoothing
                )
            self.tables_[col] = table
        return self

    def scores(self, attributes: Mapping[str, Any] | None) -> np.ndarray:
        """Popularity for a user with `attributes`, shape (n_items,), summing to about 1."""
        parts = []
        for col, table in self.tables_.items():
            v = segment_value(col, (attributes or {}).get(col))
            if v in table:
                parts.append(table[v])
        return np.mean(parts, axis=0) if parts else self.global_

    def user_scores(self, user_table: pd.DataFrame | None, users: np.ndarray) -> np.ndarray:
        """Scores for rows `users` of `user_table`, shape (B, n_items)."""
        if user_table is None:
            return np.tile(self.global_, (len(users), 1))
        rows = user_table.iloc[np.asarray(users, dtype=np.int64)].to_dict("records")
        return (
            np.stack([self.scores(r) for r in rows]) if rows else np.zeros((0, len(self.global_)))
        )


def diversified_popular(
    scores: np.ndarray, groups: np.ndarray, n: int, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Top `n` items taken round-robin across groups (categories), each group in score order,
    groups in order of their best item. Shape (<= n,)."""
    order = np.argsort(-scores, kind="stable")
    if eligible is not None:
        order = order[eligible[order]]
    order = order[np.isfinite(scores[order])]
    return _round_robin(order, np.asarray(groups)[order], n)


def _round_robin(order: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """`order` (best first) re-sorted by (position within its group, first appearance of the
    group), cut to `n`. Shapes (m,), (m,) -> (<= n,)."""
    if len(order) == 0:
        return order
    _, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    # position of each item within its group: a stable sort by group, minus the group start
    by_group = np.argsort(inv, kind="stable")
    g = inv[by_group]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    within = np.empty(len(g), np.int64)
    within[by_group] = np.arange(len(g)) - np.repeat(starts, np.diff(np.append(starts, len(g))))
    key = np.lexsort((first[inv], within))
    return order[key][:n]


def _category_paths(catalog: CatalogView, n: int) -> np.ndarray:
    return np.array([catalog.categories[c] for c in catalog.category[:n]], dtype=str)


class OnboardingRetriever(Retriever):
    """Candidates for shoppers with fewer than `min_events` history items.

    Scores: segment popularity (from `context["user"]` attributes, else the known user's
    training attributes), boosted for items in `context["interests"]` categories (paths or
    their prefixes), then spread round-robin across top-level categories. Evidence: -1 popular
    in the shop, 1 popular in the shopper's segment, 2 in a stated interest.
    """

    kind = "onboarding"
    explain_by_ref = True

    def __init__(
        self,
        name: str = "onboarding",
        min_events: int = 3,
        interest_boost: float = 10.0,
        smoothing: float = 50.0,
        columns: Sequence[str] | None = None,
    ):
        self.name = name
        self.min_events = min_events
        self.interest_boost = interest_boost
        self.smoothing = smoothing
        self.columns = columns

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_events": self.min_events,
            "interest_boost": self.interest_boost,
            "smoothing": self.smoothing,
            "columns": list(self.columns) if self.columns is not None else None,
        }

    def fit(self, data: InteractionData, catalog: CatalogView) -> Self:
        seg = SegmentPopularity(self.columns, self.smoothing).fit(data)
        self.global_ = seg.global_
        self.segment_values_: dict[str, np.ndarray] = {}
        self.segment_scores_: dict[str, np.ndarray] = {}
        self.user_codes_: dict[str, np.ndarray] = {}
        for col, table in seg.tables_.items():
            if not table:  # a column with no usable value (e.g. no user records)
                continue
            values = np.array(sorted(table), dtype=str)
            self.segment_values_[col] = values
            self.segment_scores_[col] = np.stack([table[v] for v in values])
            raw = data.user_table[col].tolist() if data.user_table is not None else []
            lookup = {v: i for i, v in enumerate(values)}
            self.user_codes_[col] = np.array(
                [lookup.get(segment_value(col, v), -1) for v in raw], np.int64
            )
        n = data.n_items
        self.__dict__.pop("_cache", None)
        self.top_ = catalog.top_category[:n].astype(np.int64)
        self.paths_ = _category_paths(catalog, n)
        return self

    # persistence: flat arrays only (no pickles in artifacts)
    def state(self) -> dict[str, np.ndarray]:
        st = {"global": self.global_, "top": self.top_, "paths": self.paths_}
        for col in self.segment_values_:
            st[f"values__{col}"] = self.segment_values_[col]
            st[f"scores__{col}"] = self.segment_scores_[col]
            st[f"users__{col}"] = self.user_codes_[col]
        return st

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.__dict__.pop("_cache", None)
        self.global_, self.top_, self.paths_ = state["global"], state["top"], state["paths"]
        self.segment_values_, self.segment_scores_, self.user_codes_ = {}, {}, {}
        for key, arr in state.items():
            if "__" in key:
                kind, col = key.split("__", 1)
                {
                    "values": self.segment_values_,
                    "scores": self.segment_scores_,
                    "users": self.user_codes_,
                }[kind][col] = arr

    def add_items(self, items: np.ndarray, categories: Sequence[str], top: np.ndarray) -> None:
        """Know new catalog items (no popularity yet) so interests can name them."""
        items = np.asarray(items, np.int64)
        self.__dict__.pop("_cache", None)
        grow = int(items.max(initial=-1)) + 1 - len(self.global_)
        if grow > 0:
            self.global_ = np.concatenate([self.global_, np.zeros(grow)])
            self.top_ = np.concatenate([self.top_, np.zeros(grow, np.int64)])
            self.paths_ = np.concatenate(
                [self.paths_, np.full(grow, "", dtype=self.paths_.dtype)]
            ).astype(str)
            for col, m in self.segment_scores_.items():
                self.segment_scores_[col] = np.hstack([m, np.zeros((len(m), grow))])
        paths = self.paths_.astype(object)
        paths[items] = list(categories)
        self.paths_ = paths.astype(str)
        self.top_[items] = top
        self.__dict__.pop("_cache", None)  # again: a request may have cached the old top_

    def _segment_codes(self, query: Query) -> tuple[int, ...]:
        """The shopper's segment code per attribute column (-1 unknown)."""
        attrs = dict((query.request.context or {}).get("user") or {})
        codes = []
        for col, values in self.segment_values_.items():
            code = -1
            if col in attrs:
                hit = np.flatnonzero(values == segment_value(col, attrs[col]))
                code = int(hit[0]) if len(hit) else -1
            elif 0 <= query.user < len(self.user_codes_[col]):
                code = int(self.user_codes_[col][query.user])
            codes.append(code)
        return tuple(codes)

    def _scores_of(self, codes: tuple[int, ...]) -> tuple[np.ndarray, bool]:
        parts = [
            self.segment_scores_[col][code]
            for col, code in zip(self.segment_values_, codes, strict=True)
            if code >= 0
        ]
        return (np.mean(parts, axis=0), True) if parts else (self.global_, False)

    def segment_scores(self, query: Query) -> tuple[np.ndarray, bool]:
        """Segment popularity for the shopper, shape (n_items,), and whether any segment
        was known."""
        return self._scores_of(self._segment_codes(query))

    def _ranked(self, codes: tuple[int, ...]) -> tuple[Any, ...]:
        """Per segment (cached): scores, whether a segment was known, items grouped by
        top-level category (each group best first), group bounds, and each item's position
        in the overall score order."""
        cache: dict[tuple[int, ...], tuple[Any, ...]] = self.__dict__.setdefault("_cache", {})
        hit = cache.get(codes)
        if hit is not None:
            return hit
        base, has_segment = self._scores_of(codes)
        scores = base.astype(np.float64)
        order = np.argsort(-scores, kind="stable")
        order = order[np.isfinite(scores[order])]
        position = np.empty(len(scores), np.int64)
        position[order] = np.arange(len(order))
        grouped = order[np.argsort(self.top_[order], kind="stable")]
        g = self.top_[grouped]
        bounds = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1], [True]]))
        hit = (scores, has_segment, grouped, bounds, position)
        if len(cache) >= 64:
            cache.clear()
        cache[codes] = hit
        return hit

    def retrieve(self, query: Query, n: int) -> Candidates:
        if len(query.history) >= self.min_events:
            return Candidates.empty()
        interests = (query.request.context or {}).get("interests") or []
        if isinstance(interests, str):
            interests = [interests]
        scores, has_segment, grouped, bounds, position = self._ranked(self._segment_codes(query))
        if not interests:
            # the round robin only reaches the first n eligible items of each group: take
            # that many plus the ones the shopper cannot get, from each group's best-first list
            removed = np.concatenate([query.history, query.excluded])
            m = n + len(removed)
            starts = bounds[:-1]
            lens = np.minimum(np.diff(bounds), m)
            take = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
            cand = grouped[take + np.arange(lens.sum())]
            cand = cand[~np.isin(cand, removed)]
            cand = cand[np.argsort(position[cand], kind="stable")]
            items = _round_robin(cand, self.top_[cand], n).astype(np.int64)
            evidence = np.full(len(items), 1 if has_segment else -1, np.int64)
            return Candidates.from_source(self.name, items, scores[items], evidence)
        scores = scores.copy()
        evidence = np.full(len(scores), 1 if has_segment else -1, np.int64)
        hit = np.zeros(len(scores), bool)
        for c in interests:
            c = str(c).strip()
            hit |= (self.paths_ == c) | np.char.startswith(self.paths_, c + " > ")
        eligible = np.ones(len(scores), bool)
        eligible[query.history[query.history < len(scores)]] = False
        eligible[query.excluded[query.excluded < len(scores)]] = False
        if hit.any():  # stated interests first, spread across their sub-categories
            scores[hit] = scores[hit] * self.interest_boost + 1e-9
            evidence[hit] = 2
            _, sub = np.unique(self.paths_, return_inverse=True)
            first = diversified_popular(scores, sub, n, eligible & hit)
            rest = diversified_popular(scores, self.top_, n - len(first), eligible & ~hit)
            items = np.concatenate([first, rest]).astype(np.int64)
        else:
            items = diversified_popular(scores, self.top_, n, eligible)
        return Candidates.from_source(self.name, items, scores[items], evidence[items])

    def explain(self, ref: int, item: int, query: Query | None, catalog: CatalogView) -> str:
        return {1: "popular with shoppers like you", 2: "in a category you told us you like"}.get(
            ref, "popular in the shop"
        )


register_retriever_kind(OnboardingRetriever.kind, OnboardingRetriever)


# --------------------------------------------------------------------------- wiring
def attach_cold_start(
    pipeline: Pipeline,
    data: InteractionData,
    encoder: ContentEncoder,
    vectors: np.ndarray | None = None,
    content: bool = True,
    onboarding: bool = True,
    new_items: bool = True,
    neighbours: int | None = None,
) -> np.ndarray:
    """Add the content, new-item and onboarding retrievers to a built pipeline.

    `encoder` is a fitted `ContentEncoder`; `vectors` (n_items, d) are its output for the
    catalog (computed when None). `neighbours` (default `config.vector_neighbours`): each
    vector source lists that many neighbours per item at once (0: search per request).
    Returns the vectors.
    """
    if vectors is None:
        vectors = encoder.transform(data.item_table)
    cfg = pipeline.config
    n_lists = cfg.vector_neighbours if neighbours is None else neighbours
    if content:
        pipeline.add_retriever(
            ContentRetriever(
                vectors,
                index=cfg.vector_index,
                ann_min_items=cfg.ann_min_items,
                neighbours=n_lists,
            )
        )
    new = None
    if new_items:
        new = NewItemsRetriever(vectors, encoder=encoder, neighbours=n_lists)
        pipeline.add_retriever(new.fit(data, pipeline.catalog))
    if onboarding:
        pipeline.add_retriever(OnboardingRetriever().fit(data, pipeline.catalog))
    install_content_hook(pipeline)
    share_vector_index(pipeline)
    if new is not None and n_lists > 0:
        new.build_neighbours()  # after sharing: through the content graph when there is one
    return vectors


def share_vector_index(pipeline: Pipeline) -> None:
    """Let each `NewItemsRetriever` search through a `ContentRetriever`'s HNSW graph when both
    hold the same unit-length vectors (as `attach_cold_start` makes them), so a large catalog
    needs one graph, not two. Call it again on a pipeline loaded from an artifact."""
    graphs = [
        r
        for r in pipeline.retrievers.values()
        if isinstance(r, ContentRetriever)
        and getattr(r, "index_", None) is not None
        and r.index_.graph is not None
    ]
    for r in pipeline.retrievers.values():
        if not isinstance(r, NewItemsRetriever) or not hasattr(r, "vectors_"):
            continue
        r.share_index(None)
        for c in graphs:
            if c.vectors_.shape != r.vectors_.shape:
                continue
            rows = np.linspace(0, len(r.vectors_) - 1, min(256, len(r.vectors_))).astype(np.int64)
            if np.allclose(c.vectors_[rows], r.vectors_[rows], atol=1e-5):
                r.share_index(c)
                break


def install_content_hook(pipeline: Pipeline) -> None:
    """Make `pipeline.update_items` also compute content vectors for the posted items (with
    the encoder kept by the pipeline's `NewItemsRetriever`), so `POST /v1/items` makes an item
    recommendable at once. Idempotent; call it again on a pipeline loaded from an artifact."""
    if getattr(pipeline.update_items, "_content_hook", False):
        return
    plain = pipeline.update_items

    def update_items(items: Any) -> list[str]:
        items = items if isinstance(items, pd.DataFrame) else list(items)
        ids = plain(items)
        refresh_content(pipeline, items)
        return ids

    update_items._content_hook = True  # type: ignore[attr-defined]
    pipeline.update_items = update_items  # type: ignore[method-assign]


def refresh_content(
    pipeline: Pipeline,
    items: Sequence[Item | Mapping[str, Any]] | pd.DataFrame,
    encoder: ContentEncoder | None = None,
    images: Mapping[str, Any] | None = None,
) -> list[int]:
    """After `pipeline.update_items(items)`: compute the items' content vectors at once
    (only new or changed content is embedded, see `EmbeddingCache`) and hand them to every
    retriever that keeps vectors, so a posted item is recommendable on the next request.
    `encoder` defaults to the one kept by the pipeline's `NewItemsRetriever`; without any,
    nothing is embedded. Returns the items' indices."""
    if encoder is None:
        encoder = next(
            (
                r.encoder_
                for r in pipeline.retrievers.values()
                if isinstance(r, NewItemsRetriever) and r.encoder_ is not None
            ),
            None,
        )
    if isinstance(items, pd.DataFrame):
        frame = items.copy()
    else:
        rows = list(items)
        frame = items_frame([r if isinstance(r, Item) else Item(**_item_fields(r)) for r in rows])
    if len(frame) == 0:
        return []
    frame["item_id"] = frame["item_id"].astype(str)
    idx = pipeline.catalog.items.to_index(frame["item_id"].tolist())
    if (idx < 0).any():  # not yet in the catalog: add it (the catalog is the index authority)
        pipeline.catalog.update_items(
            frame.drop(columns=["image_vector", "attributes", "tags"], errors="ignore")
        )
        idx = pipeline.catalog.items.to_index(frame["item_id"].tolist())
    cat = pipeline.catalog
    vectors = encoder.transform(frame, images) if encoder is not None else None
    for r in pipeline.retrievers.values():
        if isinstance(r, OnboardingRetriever):
            r.add_items(idx, [cat.categories[c] for c in cat.category[idx]], cat.top_category[idx])
        elif vectors is not None and hasattr(r, "set_vectors") and hasattr(r, "vectors_"):
            if r.vectors_.shape[1] == vectors.shape[1]:
                r.set_vectors(vectors, idx)
    return [int(i) for i in idx]


def _item_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    names = set(Item.__dataclass_fields__)
    return {k: v for k, v in raw.items() if k in names}
