"""Build and train a pipeline: fit the retrievers, learn the ranker, write the artifact.

`train_pipeline` follows the leave-one-out protocol: retrievers fit on the training part,
the LightGBM ranker learns from the *validation* targets of most validation users, and the
rest of the validation users measure the pipeline and each retriever alone (test targets
are never touched here; they belong to the evaluation harness). With `refit_full`, the
retrievers are then refit on all interactions and keep the learned ranker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.config import Config, section
from shoprec.data.cleaning import build_interactions
from shoprec.data.interactions import InteractionData
from shoprec.data.pseudonymize import PrivacyConfig
from shoprec.data.splits import EvalSet, Split, leave_one_out
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.config import PipelineConfig
from shoprec.pipeline.model_retrievers import ModelRetriever
from shoprec.pipeline.offline import evaluate_pipeline, evaluate_source, subset
from shoprec.pipeline.persist import save_artifact
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.ranker import LightGBMRanker, Ranker, WeightedSumRanker, candidate_features
from shoprec.pipeline.retrievers import (
    ItemToItemRetriever,
    Retriever,
    TrendingRetriever,
    decayed_popularity,
)
from shoprec.storage.erasure import ErasureLog, apply_ledger

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def build_pipeline(
    data: InteractionData,
    config: PipelineConfig | None = None,
    valid: EvalSet | None = None,
    log: Log = _quiet,
) -> Pipeline:
    """Fit every configured retriever on `data` and assemble a pipeline (weighted ranker).

    Parameters
    ----------
    data : InteractionData
        Training interactions with the item table (category, price, stock...).
    valid : EvalSet or None
        Passed to models for early stopping.
    """
    cfg = config or PipelineConfig()
    now = float(data.timestamps.max()) if data.n_interactions else 0.0
    catalog = CatalogView.from_table(
        data.items,
        data.item_table,
        popularity=data.item_popularity(),
        trend=decayed_popularity(data, cfg.trending_half_life_days),
        now=now,
        new_days=cfg.new_item_days,
        new_max_interactions=cfg.new_item_max_interactions,
    )
    retrievers: list[Retriever] = []
    if cfg.trending:
        retrievers.append(TrendingRetriever(half_life_days=cfg.trending_half_life_days))
    if cfg.item_to_item:
        retrievers.append(
            ItemToItemRetriever(
                window=cfg.item_to_item_window,
                neighbours=cfg.item_to_item_neighbours,
                recent=cfg.recent_items,
            )
        )
    for r in retrievers:
        t0 = time.perf_counter()
        r.fit(data, catalog)
        log(f"fitted {r.name} in {time.perf_counter() - t0:.1f}s")
    for name in cfg.models:
        t0 = time.perf_counter()
        m = ModelRetriever(name, cfg.model_params.get(name, {}), max_history=cfg.max_history)
        m.fit(data, catalog, valid)
        retrievers.append(m)
        log(f"fitted {name} in {time.perf_counter() - t0:.1f}s")
    seqs = [s[-cfg.max_history :] for s in data.sequences()]
    lens = np.array([len(s) for s in seqs], np.int64)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = np.concatenate(seqs).astype(np.int64) if seqs else np.zeros(0, np.int64)
    pipe = Pipeline(catalog, retrievers, None, cfg, data.users, (indptr, items))
    _attach_cold_start(pipe, data, cfg, log)
    return pipe


CONTENT_COLUMNS = ("title", "description", "category", "brand", "tags")


def _has_content(table: pd.DataFrame | None) -> bool:
    if table is None or len(table) == 0:
        return False
    for col in CONTENT_COLUMNS:
        if (
            col in table
            and table[col].map(lambda v: isinstance(v, str | list) and len(v) > 0).any()
        ):
            return True
    return False


def _attach_cold_start(
    pipe: Pipeline, data: InteractionData, cfg: PipelineConfig, log: Log
) -> None:
    """Content similarity, new items (from content) and onboarding (segment popularity across
    categories) as ordinary retrievers, when the catalog carries content."""
    from shoprec.pipeline.cold_start import OnboardingRetriever, attach_cold_start

    if cfg.content and _has_content(data.item_table):
        from shoprec.features.fusion import ContentEncoder

        t0 = time.perf_counter()
        enc = ContentEncoder(text_backend=cfg.content_text_backend, random_state=cfg.seed)
        enc.fit(data.item_table)
        attach_cold_start(pipe, data, enc, onboarding=cfg.onboarding)
        log(f"fitted content, new_items, onboarding in {time.perf_counter() - t0:.1f}s")
    elif cfg.onboarding:
        pipe.add_retriever(OnboardingRetriever().fit(data, pipe.catalog))


def ranker_examples(pipeline: Pipeline, evalset: EvalSet) -> tuple[np.ndarray, ...]:
    """Features, labels and group sizes for learning to rank from `evalset`'s targets.

    For each row the merged, rule-filtered candidates are the group; the label is 1 for
    the held-out next item. Rows whose target was not retrieved teach nothing and are
    skipped. Returns X (N, F), y (N,), groups (G,).
    """
    rule_filter = pipeline.rerankers[0]
    sources = pipeline.sources
    xs, ys, groups = [], [], []
    for i in range(len(evalset)):
        hist = evalset.histories[i]
        if len(hist) == 0:
            continue
        q = pipeline.query_from_indices(hist, 10)
        c = rule_filter.rerank(q, pipeline.candidates(q))
        tgt = evalset.targets.indices[evalset.targets.indptr[i] : evalset.targets.indptr[i + 1]]
        y = np.isin(c.items, tgt).astype(np.float32)
        if y.sum() == 0 or len(c) < 2:
            continue
        xs.append(candidate_features(q, c, pipeline.catalog, sources))
        ys.append(y)
        groups.append(len(c))
    if not xs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.vstack(xs), np.concatenate(ys), np.array(groups, np.int64)


def fit_ranker(
    pipeline: Pipeline, evalset: EvalSet, config: PipelineConfig, log: Log = _quiet
) -> LightGBMRanker | None:
    """A LightGBM lambdarank ranker from `evalset`'s targets; None when nothing to learn."""
    x, y, groups = ranker_examples(pipeline, evalset)
    log(
        f"ranker examples: {len(groups)} queries, {len(y)} candidates, "
        f"recall of retrieval {len(groups) / max(1, len(evalset)):.3f}"
    )
    if len(groups) < 20:
        log("too few queries with a retrieved target: keeping the weighted ranker")
        return None
    params = {"rounds": config.ranker_rounds, "seed": config.seed}
    return LightGBMRanker(pipeline.sources, pipeline.catalog, params).fit(x, y, groups)


def select_ranker(
    pipeline: Pipeline, hold: EvalSet, source_metrics: dict[str, Any], k: int = 10
) -> tuple[Ranker, dict[str, float]]:
    """Keep the ranker with the best NDCG@k on held-out validation users.

    Contenders: the trained LightGBM ranker (when there is one), the equal-weight sum of
    normalised source scores, and the best single source leading (weight 1, the others
    1e-3 to break its ties and fill). Test targets play no part.
    """
    contenders: dict[str, Ranker] = {}
    if isinstance(pipeline.ranker, LightGBMRanker):
        contenders["lightgbm"] = pipeline.ranker
    contenders["weighted"] = WeightedSumRanker(pipeline.config.source_weights)
    best = max(pipeline.sources, key=lambda s: source_metrics[s][f"ndcg@{k}"])
    lead = WeightedSumRanker({s: (1.0 if s == best else 1e-3) for s in pipeline.sources})
    contenders[f"lead:{best}"] = lead
    scores: dict[str, float] = {}
    for name, ranker in contenders.items():
        pipeline.ranker = ranker
        scores[name] = evaluate_pipeline(pipeline, hold, k)[f"ndcg@{k}"]
    winner = max(scores, key=lambda n: (scores[n], n == "lightgbm"))
    return contenders[winner], scores


@dataclass
class TrainResult:
    """What `train_pipeline` produced."""

    pipeline: Pipeline
    metrics: dict[str, Any]
    split: Split
    timings: dict[str, float] = field(default_factory=dict)


def train_pipeline(
    data: InteractionData, config: PipelineConfig | None = None, log: Log = _quiet, eval_k: int = 10
) -> TrainResult:
    """Split leave-one-out, fit retrievers and the ranker, measure on held-out validation."""
    cfg = config or PipelineConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    split = leave_one_out(data)
    pipe = build_pipeline(split.train, cfg, split.valid, log)
    timings["fit_retrievers_s"] = time.perf_counter() - t0
    rows = np.random.default_rng(cfg.seed).permutation(len(split.valid))
    n_hold = min(int(round(len(rows) * cfg.ranker_holdout)), 2000)
    hold_rows, train_rows = np.sort(rows[:n_hold]), np.sort(rows[n_hold:][: cfg.ranker_max_users])
    if cfg.ranker == "lightgbm" and len(train_rows):
        t0 = time.perf_counter()
        ranker = fit_ranker(pipe, subset(split.valid, train_rows), cfg, log)
        if ranker is not None:
            pipe.ranker = ranker
        timings["fit_ranker_s"] = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "protocol": "leave_one_out, validation targets (held-out users)",
        "ranker": pipe.ranker.kind,
    }
    if n_hold:
        hold = subset(split.valid, hold_rows)
        t0 = time.perf_counter()
        for s in pipe.sources:
            metrics[s] = evaluate_source(pipe, s, hold, eval_k)
        if cfg.select_ranker:
            pipe.ranker, metrics["ranker_selection"] = select_ranker(pipe, hold, metrics, eval_k)
            sel = metrics["ranker_selection"]
            metrics["ranker"] = max(sel, key=lambda n: (sel[n], n == "lightgbm"))
            log(f"ranker selection (NDCG@{eval_k}): {metrics['ranker_selection']}")
        metrics["pipeline"] = evaluate_pipeline(pipe, hold, eval_k)
        timings["validate_s"] = time.perf_counter() - t0
    if cfg.refit_full:
        t0 = time.perf_counter()
        full = build_pipeline(data, cfg, None, log)
        if isinstance(pipe.ranker, LightGBMRanker):
            ranker = LightGBMRanker(pipe.ranker.sources, full.catalog, pipe.ranker.params)
            ranker.booster_ = pipe.ranker.booster_
            full.ranker = ranker
        else:
            full.ranker = pipe.ranker
        pipe = full
        timings["refit_full_s"] = time.perf_counter() - t0
    return TrainResult(pipe, metrics, split, timings)


def train_artifact(
    data: InteractionData,
    out: str | Path,
    config: PipelineConfig | None = None,
    log: Log = _quiet,
    erasures: list[str] | None = None,
) -> tuple[Path, TrainResult]:
    """Train and write a new artifact version under `out` (and point `latest` at it);
    `erasures` lists the erasure ids whose users `data` leaves out."""
    result = train_pipeline(data, config, log)
    path = save_artifact(
        result.pipeline,
        out,
        result.metrics,
        data.fingerprint(),
        extra={
            "erasures": list(erasures or []),
            "timings": result.timings,
            "data": {
                "users": data.n_users,
                "items": data.n_items,
                "interactions": data.n_interactions,
            },
        },
    )
    return path, result


def interactions_from_frames(
    events: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None, cfg: Config
) -> InteractionData:
    """Events, catalog and users frames -> InteractionData through the cleaning chain
    (bots, outliers, feedback strength, k-core: `shoprec.data.cleaning`)."""
    data, _report = build_interactions(events, items, users, cfg.cleaning)
    return data


def train_from_store(
    store_url: str, out: str | Path, cfg: Config, log: Log = _quiet
) -> tuple[Path, TrainResult]:
    """`shoprec train`: read the store, build interactions, train, write the artifact."""
    from shoprec.storage import open_store

    pipeline_cfg = section(cfg, "pipeline", PipelineConfig)  # a bad config fails before any work
    with open_store(store_url) as store:
        events, items, users = store.events_frame(), store.items_frame(), store.users_frame()
    log(f"read {len(events)} events, {len(items)} items, {len(users)} users")
    # erased users stay out and the artifact records the erasures it honours; retention too
    privacy = section(cfg, "privacy", PrivacyConfig)
    ledger = ErasureLog(privacy.erasure_log) if privacy.erasure_log else None
    events, users, erasures = apply_ledger(events, users, ledger, privacy.retention_days)
    data = interactions_from_frames(events, items, users, cfg)
    log(f"interactions: {data.n_interactions} ({data.n_users} users x {data.n_items} items)")
    return train_artifact(data, out, pipeline_cfg, log, erasures=erasures)
