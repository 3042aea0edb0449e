"""`Pipeline`: retrieve from every source, merge, rank, re-rank in order, top up, explain.

External ids go in and come out; everything between works on item indices through one
`CatalogView`. Re-rankers run on every request in this order: hard rules, diversity,
exploration slots, promotion slots, fallback top-up (gorse's recall chain with fallback).
A shopper without history gets the cold-start list (trending, diversified across categories).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from shoprec.data.idmap import IdMap
from shoprec.pipeline.candidates import EVIDENCE, RANK, SCORE, Candidates, merge
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.config import PipelineConfig
from shoprec.pipeline.ranker import Ranker, WeightedSumRanker
from shoprec.pipeline.request import Query, Recommendation, RecRequest
from shoprec.pipeline.rerankers import (
    Campaign,
    DiversityReranker,
    ExplorationReranker,
    PromotionReranker,
)
from shoprec.pipeline.retrievers import Retriever
from shoprec.pipeline.rules import Reranker, RuleFilter, Rules, TopUp, sorted_unique
from shoprec.types import Item

_CLICK_TYPES = frozenset({"click", "add_to_cart", "wishlist", "purchase"})
_PSEUDO_EVIDENCE = {
    "exploration": "new in the shop: we are trying it out",
    "promotion": "promoted by the shop",
}


class Pipeline:
    """The serve-time recommendation chain.

    Parameters
    ----------
    catalog : CatalogView
        Live catalog, aligned to the item index of every model.
    retrievers : sequence of Retriever
        Recall sources, by their `name`.
    ranker : Ranker or None
        None ranks by a weighted sum of normalised source scores.
    config : PipelineConfig
    users : IdMap or None
        Users known at training time; with `histories`, their trained histories.
    histories : (indptr, items) or None
        CSR-style trained history per user index (oldest first), used when a request
        brings no history of its own.
    info : dict or None
        Artifact metadata (version, metrics...).
    """

    def __init__(
        self,
        catalog: CatalogView,
        retrievers: Sequence[Retriever],
        ranker: Ranker | None = None,
        config: PipelineConfig | None = None,
        users: IdMap | None = None,
        histories: tuple[np.ndarray, np.ndarray] | None = None,
        campaigns: Sequence[Campaign] = (),
        info: dict[str, Any] | None = None,
    ):
        cfg = config or PipelineConfig()
        self.config = cfg
        self.catalog = catalog
        self.retrievers: dict[str, Retriever] = {r.name: r for r in retrievers}
        self.fallback_ranker = WeightedSumRanker(cfg.source_weights)
        self.ranker: Ranker = ranker or self.fallback_ranker
        self.users = users or IdMap()
        if histories is None:
            histories = (np.zeros(len(self.users) + 1, np.int64), np.zeros(0, np.int64))
        self.histories = histories
        self.info: dict[str, Any] = dict(info or {})
        self._forgotten: set[str] = set()
        self.rules = Rules(catalog)
        self.exploration = ExplorationReranker(
            self.rules, cfg.exploration_slots, cfg.exploration_min_k, seed=cfg.seed
        )
        self.promotion = PromotionReranker(self.rules, tuple(campaigns), cfg.max_promoted)
        self.rerankers: list[Reranker] = [
            RuleFilter(self.rules),
            DiversityReranker(self.rules, cfg.max_per_category, cfg.diversity_pool),
            self.exploration,
            self.promotion,
            TopUp(self.rules, cfg.max_per_category),
        ]

    # ---------------------------------------------------------------- metadata
    @property
    def version(self) -> str:
        """The artifact version this pipeline was loaded from."""
        return str(self.info.get("version", "unversioned"))

    @property
    def sources(self) -> list[str]:
        return list(self.retrievers)

    def add_retriever(self, retriever: Retriever) -> None:
        """Add (or replace, by name) a recall source, e.g. content similarity."""
        self.retrievers = {**self.retrievers, retriever.name: retriever}

    # --------------------------------------------------------------- resolving
    def resolve(self, request: RecRequest) -> Query:
        """Translate a request into index space (unknown items are dropped)."""
        if request.history:
            hist_ids, all_types, stamps = zip(*request.history, strict=True)
            idx = self.catalog.items.to_index(hist_ids)
            known = idx >= 0
            history = idx[known]
            ts = np.array(stamps, np.float64)[known]
            types = list(all_types if known.all() else compress(all_types, known.tolist()))
        else:
            history, types, ts = np.zeros(0, np.int64), [], np.zeros(0)
        user = self.users.get(request.user_id) if request.user_id is not None else -1
        if len(history) == 0 and user >= 0 and request.user_id not in self._forgotten:
            indptr, hist_items = self.histories
            if user + 1 < len(indptr):
                history = hist_items[indptr[user] : indptr[user + 1]].astype(np.int64)
                types = [""] * len(history)
                ts = np.zeros(len(history))
        return self._query(request, user, history, types, ts)

    def _query(
        self, request: RecRequest, user: int, history: np.ndarray, types: list[str], ts: np.ndarray
    ) -> Query:
        cold = len(history) == 0
        if request.diversity is not None:
            div = request.diversity
        else:
            div = self.config.cold_start_diversity if cold else self.config.diversity
        if self.config.exclude_seen:
            excluded = history
        else:
            excluded = history[np.array([t == "purchase" for t in types], bool)]
        if request.exclude_items:
            hidden = self.catalog.items.to_index(request.exclude_items)
            excluded = np.concatenate([excluded, hidden[hidden >= 0]])
        return Query(
            request,
            user,
            history,
            types,
            ts,
            int(request.k),
            float(div),
            sorted_unique(excluded),
            cold,
        )

    def query_from_indices(
        self, history: np.ndarray, k: int, diversity: float | None = None, **request_fields: Any
    ) -> Query:
        """A query for an index-space history (offline evaluation, ranker training)."""
        history = np.asarray(history, np.int64)
        req = RecRequest(k=k, diversity=diversity, **request_fields)
        return self._query(req, -1, history, [""] * len(history), np.zeros(len(history)))

    # ----------------------------------------------------------------- running
    def candidates(self, query: Query) -> Candidates:
        """Every retriever's list, merged and de-duplicated (not yet ranked)."""
        n = self.config.n_candidates
        return merge([r.retrieve(query, n) for r in self.retrievers.values()])

    def run(self, query: Query) -> Candidates:
        """The whole chain in index space; at most `query.k` items, best first."""
        if query.k <= 0:
            return Candidates.empty()
        cands = self.candidates(query)
        ranker = self.fallback_ranker if query.cold else self.ranker
        cands = ranker.rank(query, cands)
        stages = self.rerankers
        cut_at = len(stages)  # the trailing stages that only touch the top k get the top k
        while cut_at and stages[cut_at - 1].top_k_only:
            cut_at -= 1
        for i, stage in enumerate(stages):
            if i == cut_at:
                cands = cands.cut(query.k)
            cands = stage.rerank(query, cands)
        return cands.head(query.k)

    def recommend(self, request: RecRequest) -> list[Recommendation]:
        """Up to `request.k` items (exactly k whenever the catalog allows), explained."""
        query = self.resolve(request)
        return self._to_recs(self.run(query), query)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items similar to `item_id`, available ones only; KeyError for an unknown item."""
        idx = self.catalog.items.get(str(item_id))
        if idx < 0:
            raise KeyError(item_id)
        query = self._query(RecRequest(k=k), -1, np.array([idx], np.int64), [""], np.zeros(1))
        n = self.config.n_candidates
        cands = merge([r.similar(idx, n) for r in self.retrievers.values()])
        cands = self.fallback_ranker.rank(query, cands)
        cands = self.rerankers[0].rerank(query, cands).head(k)
        if len(cands) < k:  # same category first, then anything popular
            cat = self.catalog.category_name(int(self.catalog.category[idx]))
            topup = self.rerankers[-1]
            if cat:
                same = self._query(
                    RecRequest(k=k, category=cat), -1, query.history, [""], np.zeros(1)
                )
                cands = topup.rerank(same, cands)
            cands = topup.rerank(query, cands)
        return self._to_recs(cands.head(k), None)

    def retrieve(
        self, source: str, request: RecRequest, n: int = 50, apply_rules: bool = True
    ) -> list[Recommendation]:
        """One retriever alone (debug routes); KeyError for an unknown source."""
        retriever = self.retrievers[source]
        query = self.resolve(request)
        cands = retriever.retrieve(query, n)
        if apply_rules:
            cands = self.rerankers[0].rerank(query, cands)
        return self._to_recs(cands, query)

    # ------------------------------------------------------------ explanations
    def explain(self, cands: Candidates, pos: int, query: Query | None) -> dict[str, Any]:
        """The explanation of the item at position `pos` of `cands`."""
        return self._explanations(cands.take(np.array([pos])), query)[0]

    def _explanations(self, cands: Candidates, query: Query | None) -> list[dict[str, Any]]:
        """One explanation per item of `cands`: sources, evidence, adjustments, per-source
        scores and ranks. Columns become Python lists once (k is small; numpy scalars
        per item would cost more than the whole ranking)."""
        items = cands.items.tolist()
        out: list[dict[str, Any]] = [
            {
                "sources": [],
                "evidence": [],
                "adjustments": list(cands.adjustments.get(i, [])),
                "source_scores": {},
                "source_ranks": {},
            }
            for i in items
        ]
        cols = cands.columns
        evidence = cols[EVIDENCE].astype(np.int64)
        for j, s in enumerate(cands.names):
            scores = cols[SCORE, j].tolist()
            ranks = cols[RANK, j].tolist()
            r = self.retrievers.get(s)
            refs = evidence[j]
            refs = (
                r.resolve_evidence(refs, cands.items, query) if r is not None else refs
            ).tolist()
            said: dict[int, str] | None = {} if r is not None and r.explain_by_ref else None
            for i, v in enumerate(scores):
                if v != v:  # NaN: this source did not find the item
                    continue
                e = out[i]
                e["sources"].append(s)
                e["source_scores"][s] = round(v, 6)
                e["source_ranks"][s] = int(ranks[i]) + 1
                if said is not None:  # one wording per reference
                    text = said.get(refs[i])
                    if text is None:
                        text = said[refs[i]] = r.explain(refs[i], items[i], query, self.catalog)
                    e["evidence"].append(text)
                elif r is not None:
                    e["evidence"].append(r.explain(refs[i], items[i], query, self.catalog))
                elif s == "fallback":
                    e["evidence"].append(
                        "popular in the shop right now"
                        if self.catalog.trend[items[i]] > 0
                        else "available in the shop"
                    )
                elif s in _PSEUDO_EVIDENCE:
                    e["evidence"].append(_PSEUDO_EVIDENCE[s])
        return out

    def _to_recs(self, cands: Candidates, query: Query | None) -> list[Recommendation]:
        ids = self.catalog.items.to_ids(cands.items.tolist())
        explanations = self._explanations(cands, query)
        scores = cands.scores.tolist()
        return [Recommendation(i, s, e) for i, s, e in zip(ids, scores, explanations, strict=True)]

    # -------------------------------------------------------------- live state
    def update_items(self, items: Iterable[Item | Mapping[str, Any]] | pd.DataFrame) -> list[str]:
        """Insert or change catalog entries; takes effect on the next request."""
        idx = self.catalog.update_items(items)
        return self.catalog.items.to_ids(idx)

    def remove_item(self, item_id: str) -> bool:
        """Make an item unavailable everywhere at once; False when unknown."""
        return self.catalog.remove_item(item_id)

    def set_campaigns(self, campaigns: Sequence[Campaign]) -> None:
        """Replace the promotion campaigns (takes effect on the next request)."""
        self.promotion.campaigns = tuple(campaigns)

    def record_event(self, item_id: str, event_type: str) -> None:
        """Feed exploration: a click-like event on an item counts as a success."""
        idx = self.catalog.items.get(str(item_id))
        if idx >= 0 and event_type in _CLICK_TYPES:
            self.exploration.record(idx, clicked=True)

    def forget_user(self, user_id: str) -> None:
        """Stop using the trained history of `user_id` (erasure)."""
        self._forgotten.add(str(user_id))
