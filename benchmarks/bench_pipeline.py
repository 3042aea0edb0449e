"""Offline check of the whole recommendation pipeline (leave-one-out, test targets).

Trains the pipeline as `shoprec train` does (retrievers on the training part, LightGBM
ranker on validation targets, no refit), then runs it exactly as it serves, one request per
test user, and reports HR@10 / NDCG@10 (from `shoprec.evaluation.metrics`), intra-list
diversity over category / attribute vectors, catalog coverage and CPU time per request:

- each retriever alone (after the hard rules);
- the whole pipeline at diversity 0, 0.25, 0.5, 0.75 and 1, with and without its
  exploration slot.

Writes `benchmarks/results/pipeline_<name>.json` and a trade-off plot
`benchmarks/results/pipeline_<name>_tradeoff.png`.

    python benchmarks/bench_pipeline.py --data synthetic --users 3000 --items 1500
    python benchmarks/bench_pipeline.py --data /work/shared/data/Beauty/Beauty.txt \\
        --attributes /work/shared/data/Beauty/Beauty_item2attributes.json --models itemknn
    python benchmarks/bench_pipeline.py --mode latency --items 100000 --users 50000 \\
        --events 1000000 --models als
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from shoprec.config import Config
from shoprec.data.interactions import InteractionData
from shoprec.evaluation.metrics import (
    accuracy_per_row,
    attribute_vectors,
    catalog_coverage,
    intra_list_diversity,
)
from shoprec.pipeline import PipelineConfig
from shoprec.pipeline.build import interactions_from_frames, train_pipeline
from shoprec.pipeline.offline import sample_rows, subset
from shoprec.pipeline.pipeline import Pipeline

RESULTS = Path(__file__).parent / "results"
KNOBS = (0.0, 0.25, 0.5, 0.75, 1.0)


def load(args: argparse.Namespace) -> tuple[str, InteractionData]:
    if args.data == "synthetic":
        from shoprec.data.synthetic import generate_shop

        shop = generate_shop(n_users=args.users, n_items=args.items, seed=args.seed)
        data = interactions_from_frames(shop.events, shop.items, shop.users, Config())
        return f"synthetic_{args.users}x{args.items}", data
    from shoprec.evaluation.datasets import load_dataset

    data = load_dataset(args.data, None, args.attributes)
    if (
        data.item_table is not None
        and "tags" in data.item_table
        and "category" not in data.item_table
    ):
        # the first attribute id stands in for a category, so rules and diversity have one
        data.item_table["category"] = [
            f"a{t[0]}" if len(t) else "" for t in data.item_table["tags"]
        ]
    return Path(args.data).stem, data


def run_lists(pipeline: Pipeline, evalset, produce, k: int, diversity: float | None):
    """Top-k lists (B, k) padded with -1, per-request CPU seconds."""
    topk = np.full((len(evalset), k), -1, np.int64)
    cpu = np.zeros(len(evalset))
    for i in range(len(evalset)):
        q = pipeline.query_from_indices(evalset.histories[i], k, diversity)
        t0 = time.thread_time()
        items = produce(q).items[:k]
        cpu[i] = time.thread_time() - t0
        topk[i, : len(items)] = items
    return topk, cpu


def metrics(topk: np.ndarray, cpu: np.ndarray, evalset, vectors, n_items: int, k: int) -> dict:
    ranks = []
    for i in range(len(evalset)):
        tgt = evalset.targets.indices[evalset.targets.indptr[i] : evalset.targets.indptr[i + 1]]
        pos = [
            int(np.flatnonzero(topk[i] == t)[0]) if (topk[i] == t).any() else n_items for t in tgt
        ]
        ranks.append(np.array(pos))
    per_row = accuracy_per_row(ranks, np.diff(evalset.targets.indptr), (k,))
    full = (topk >= 0).all(axis=1)
    return {
        f"hr@{k}": float(per_row[f"HR@{k}"].mean()),
        f"ndcg@{k}": float(per_row[f"NDCG@{k}"].mean()),
        "ild": intra_list_diversity(topk[full], vectors) if vectors is not None else None,
        "coverage": catalog_coverage(topk[full], n_items),
        "cpu_ms_median": float(np.median(cpu) * 1e3),
        "cpu_ms_p99": float(np.percentile(cpu, 99) * 1e3),
        "users": len(evalset),
    }


def latency(args: argparse.Namespace) -> None:
    """In-process CPU time per request on a large random catalog (power-law popularity)."""
    import pandas as pd

    from shoprec.data.splits import leave_one_out
    from shoprec.pipeline import RecRequest
    from shoprec.pipeline.build import build_pipeline, fit_ranker

    rng = np.random.default_rng(args.seed)
    n_items, n_users, n_ev = args.items, args.users, args.events
    pop = rng.zipf(1.3, n_items).astype(float)
    u = rng.integers(0, n_users, n_ev)
    i = rng.choice(n_items, n_ev, p=pop / pop.sum())
    frame = pd.DataFrame(
        {
            "user_id": u.astype(str),
            "item_id": i.astype(str),
            "timestamp": rng.uniform(0, 90 * 86400, n_ev),
            "weight": 1.0,
        }
    )
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items).astype(str),
            "category": [f"D{c % 10} > C{c}" for c in rng.integers(0, 300, n_items)],
            "price": rng.uniform(1, 200, n_items),
            "stock": rng.integers(0, 10, n_items),
        }
    )
    data = InteractionData.from_frame(frame, items)
    models = tuple(m for m in args.models.split(",") if m)
    cfg = PipelineConfig(models=models, seed=args.seed)
    split = leave_one_out(data)
    t0 = time.perf_counter()
    pipe = build_pipeline(split.train, cfg, split.valid)
    fit_s = time.perf_counter() - t0
    ranker = fit_ranker(pipe, subset(split.valid, np.arange(min(2000, len(split.valid)))), cfg)
    if ranker is not None:
        pipe.ranker = ranker
    n = min(args.requests, len(split.test))
    hists = [pipe.catalog.items.to_ids(h[-50:]) for h in split.test.histories[:n]]
    out = {
        "items": n_items,
        "users": n_users,
        "events": n_ev,
        "models": list(models),
        "ranker": pipe.ranker.kind,
        "fit_retrievers_s": fit_s,
        "requests": n,
        "cases": {},
    }
    cases = {
        "warm, diversity 0": [RecRequest(k=10, history=h) for h in hists],
        "warm, diversity 0.5": [RecRequest(k=10, history=h, diversity=0.5) for h in hists],
        "warm, price + category filter": [
            RecRequest(k=10, history=h, category="D3", max_price=100.0) for h in hists
        ],
        "cold start": [RecRequest(k=10, user_id=f"new{j}") for j in range(n)],
    }
    for name, reqs in cases.items():
        cpu, wall = np.zeros(len(reqs)), np.zeros(len(reqs))
        for j, r in enumerate(reqs):
            t0, c0 = time.perf_counter(), time.thread_time()
            pipe.recommend(r)
            cpu[j], wall[j] = time.thread_time() - c0, time.perf_counter() - t0
        out["cases"][name] = {
            "cpu_ms_p50": float(np.median(cpu) * 1e3),
            "cpu_ms_p95": float(np.percentile(cpu, 95) * 1e3),
            "cpu_ms_p99": float(np.percentile(cpu, 99) * 1e3),
            "wall_ms_p50": float(np.median(wall) * 1e3),
        }
        print(name, out["cases"][name])
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pipeline_latency_{n_items}_{'+'.join(models) or 'no_model'}.json"
    path.write_text(json.dumps(out, indent=2))
    print("wrote", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("accuracy", "latency"), default="accuracy")
    ap.add_argument("--events", type=int, default=1_000_000, help="latency mode")
    ap.add_argument("--requests", type=int, default=500, help="latency mode")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--attributes", default=None)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--items", type=int, default=1500)
    ap.add_argument("--models", default="", help="registry models as retrievers, comma list")
    ap.add_argument("--model-params", default="{}", help='JSON, e.g. {"sasrec": {"epochs": 20}}')
    ap.add_argument("--eval-users", type=int, default=2000)
    ap.add_argument("--ranker-users", type=int, default=5000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--vector-index",
        choices=("auto", "exact", "hnsw"),
        default="auto",
        help="content vector search (hnsw: faiss graph even for a small catalog)",
    )
    ap.add_argument(
        "--vector-neighbours",
        type=int,
        default=PipelineConfig().vector_neighbours,
        help="per-item neighbour lists of the vector sources (0: search per request)",
    )
    ap.add_argument(
        "--knobs", default=",".join(map(str, KNOBS)), help="diversity knobs, comma list"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.mode == "latency":
        latency(args)
        return
    name, data = load(args)
    models = tuple(m for m in args.models.split(",") if m)
    if args.vector_index != "auto":
        name += f"_{args.vector_index}"
    if args.vector_neighbours > 0:  # search per request keeps the earlier names
        name += f"_nn{args.vector_neighbours}"
    knobs = [float(x) for x in args.knobs.split(",") if x]
    cfg = PipelineConfig(
        models=models,
        model_params=json.loads(args.model_params),
        vector_index=args.vector_index,
        vector_neighbours=args.vector_neighbours,
        refit_full=False,
        ranker_max_users=args.ranker_users,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    result = train_pipeline(data, cfg, log=print)
    train_s = time.perf_counter() - t0
    pipe = result.pipeline
    test = subset(result.split.test, sample_rows(result.split.test, args.eval_users, args.seed))
    n_items = data.n_items
    vectors = attribute_vectors(data.item_table, n_items)  # category, brand, tags
    k = args.k
    out: dict = {
        "dataset": name,
        "users": data.n_users,
        "items": n_items,
        "interactions": data.n_interactions,
        "train_s": train_s,
        "config": {
            k2: (list(v) if isinstance(v, tuple) else v)
            for k2, v in dataclasses.asdict(cfg).items()
        },
        "validation": result.metrics,
        "sources": {},
        "pipeline": {},
        "pipeline_no_exploration": {},
    }
    exploration = pipe.exploration
    exploration.count_impressions = False
    rule_filter = pipe.rerankers[0]
    for s in pipe.sources:
        r = pipe.retrievers[s]

        def produce(q, r=r):
            return rule_filter.rerank(q, r.retrieve(q, k + len(q.history)))

        out["sources"][s] = metrics(
            *run_lists(pipe, test, produce, k, 0.0), test, vectors, n_items, k
        )
        print(s, out["sources"][s])
    for key, slots in (("pipeline", cfg.exploration_slots), ("pipeline_no_exploration", 0)):
        exploration.slots = slots
        for d in knobs:
            out[key][str(d)] = metrics(
                *run_lists(pipe, test, pipe.run, k, d), test, vectors, n_items, k
            )
            print(key, d, out[key][str(d)])
    exploration.slots = cfg.exploration_slots
    best = max(out["sources"], key=lambda s: out["sources"][s][f"ndcg@{k}"])
    out["best_source"] = best
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pipeline_{name}.json"
    path.write_text(json.dumps(out, indent=2))
    plot(out, RESULTS / f"pipeline_{name}_tradeoff.png", k)
    print("wrote", path)


def plot(out: dict, path: Path, k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("pipeline", "o-"), ("pipeline_no_exploration", "s--")):
        rows = out[key]
        knobs = [float(d) for d in rows]
        acc = [rows[d][f"ndcg@{k}"] for d in rows]
        ild = [rows[d]["ild"] or 0.0 for d in rows]
        cov = [rows[d]["coverage"] for d in rows]
        axes[0].plot(ild, acc, style, label=key.replace("_", " "))
        for x, y, d in zip(ild, acc, knobs, strict=True):
            axes[0].annotate(f"{d:g}", (x, y), textcoords="offset points", xytext=(4, 4))
        axes[1].plot(knobs, cov, style, label=key.replace("_", " "))
    for s, m in out["sources"].items():
        axes[0].plot([m["ild"] or 0.0], [m[f"ndcg@{k}"]], "x", label=f"{s} alone")
    axes[0].set_xlabel("intra-list diversity (attributes)")
    axes[0].set_ylabel(f"NDCG@{k} (test)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("diversity knob")
    axes[1].set_ylabel(f"catalog coverage of top-{k}")
    fig.suptitle(f"{out['dataset']}: accuracy / diversity trade-off (labels: knob)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
