"""Offline check of the whole pipeline with the leave-one-out protocol.

The pipeline is run exactly as it serves (retrieve, rank, every re-ranker), once per
evaluated user, with the user's history before the target as input. A target outside the
returned top k counts as a miss, like a full-ranking evaluation cut at k. Metrics come
from `shoprec.models.ranking` (the same functions the evaluation harness uses).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shoprec.data.splits import EvalSet
from shoprec.models.ranking import ndcg_hr_at_k
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.request import Query


def subset(evalset: EvalSet, rows: np.ndarray) -> EvalSet:
    """The rows `rows` of an evaluation set."""
    rows = np.asarray(rows, np.int64)
    return EvalSet(evalset.users[rows], [evalset.histories[i] for i in rows], evalset.targets[rows])


def sample_rows(evalset: EvalSet, max_users: int | None, seed: int = 0) -> np.ndarray:
    """At most `max_users` row positions, seeded, in ascending order."""
    n = len(evalset)
    if max_users is None or n <= max_users:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_users, replace=False))


def intra_list_diversity(categories: np.ndarray) -> float:
    """Share of item pairs in different categories, for one list of category codes."""
    n = len(categories)
    if n < 2:
        return 0.0
    same = (categories[:, None] == categories[None, :]).sum() - n
    return float(1.0 - same / (n * (n - 1)))


def evaluate_lists(
    pipeline: Pipeline,
    evalset: EvalSet,
    produce: Callable[[Query], Candidates],
    k: int = 10,
    diversity: float | None = 0.0,
) -> dict[str, float]:
    """HR@k, NDCG@k, intra-list diversity and catalog coverage of `produce`'s lists.

    Parameters
    ----------
    produce : callable
        Query -> Candidates (best first); the first k items count.
    """
    ranks: list[np.ndarray] = []
    ild: list[float] = []
    seen = np.zeros(len(pipeline.catalog), bool)
    exploration = pipeline.exploration
    counting, exploration.count_impressions = exploration.count_impressions, False
    try:
        for i in range(len(evalset)):
            q = pipeline.query_from_indices(evalset.histories[i], k, diversity)
            items = produce(q).items[:k]
            tgt = evalset.targets.indices[evalset.targets.indptr[i] : evalset.targets.indptr[i + 1]]
            pos = np.flatnonzero(np.isin(items, tgt))
            r = np.full(len(tgt), k, np.int64)
            r[: len(pos)] = pos
            ranks.append(r)
            ild.append(intra_list_diversity(pipeline.catalog.category[items]))
            seen[items] = True
    finally:
        exploration.count_impressions = counting
    ndcg, hr = ndcg_hr_at_k(ranks, np.diff(evalset.targets.indptr), k)
    return {
        f"hr@{k}": hr,
        f"ndcg@{k}": ndcg,
        "ild": float(np.mean(ild)) if ild else 0.0,
        "coverage": float(seen.sum() / max(1, len(pipeline.catalog))),
        "users": len(evalset),
    }


def evaluate_pipeline(
    pipeline: Pipeline, evalset: EvalSet, k: int = 10, diversity: float | None = 0.0
) -> dict[str, float]:
    """Metrics of the whole chain (what shoppers get)."""
    return evaluate_lists(pipeline, evalset, pipeline.run, k, diversity)


def evaluate_source(
    pipeline: Pipeline, source: str, evalset: EvalSet, k: int = 10
) -> dict[str, float]:
    """Metrics of one retriever alone, after the hard rules (bought / seen items removed)."""
    retriever = pipeline.retrievers[source]
    rule_filter = pipeline.rerankers[0]

    def produce(q: Query) -> Candidates:
        return rule_filter.rerank(q, retriever.retrieve(q, k + len(q.history)))

    return evaluate_lists(pipeline, evalset, produce, k, 0.0)
