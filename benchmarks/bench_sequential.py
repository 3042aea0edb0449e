"""Train one registered model on a sequence dataset and report leave-one-out full ranking.

Usage:
    python benchmarks/bench_sequential.py --data ../shared/data/Beauty/Beauty.txt \
        --item-attributes ../shared/data/Beauty/Beauty_item2attributes.json \
        --model sasrec --params '{"max_seconds": 600}' --out benchmarks/results/x.json

Protocol (shared/data/README.md): last item test, second-to-last validation, last 50 items as
input, full ranking over all items, history masked. Test numbers are reported; validation
NDCG@10 drives early stopping inside the model.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import leave_one_out
from shoprec.models.ranking import ndcg_hr_at_k, target_ranks
from shoprec.models.registry import create


def read_seq(path: str, attributes: str | None) -> InteractionData:
    opener = gzip.open if path.endswith(".gz") else open
    seqs: dict[str, list[str]] = {}
    with opener(path, "rt") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                seqs[parts[0]] = parts[1:]
    attrs = json.loads(Path(attributes).read_text()) if attributes else None
    return InteractionData.from_sequences(seqs, attrs)


def evaluate(model, evalset, ks=(5, 10, 20), batch_size: int = 1024) -> dict[str, float]:
    ranks = []
    for start in range(0, len(evalset), batch_size):
        hist = evalset.histories[start : start + batch_size]
        ranks.extend(
            target_ranks(model.score(hist), hist, evalset.targets[start : start + batch_size])
        )
    n_targets = np.diff(evalset.targets.indptr)
    out: dict[str, float] = {}
    for k in ks:
        ndcg, hr = ndcg_hr_at_k(ranks, n_targets, k)
        out[f"HR@{k}"], out[f"NDCG@{k}"] = hr, ndcg
    out["MRR"] = float(np.mean([1.0 / (r.min() + 1) for r in ranks]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--item-attributes", default=None)
    ap.add_argument("--model", required=True)
    ap.add_argument("--params", default="{}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = read_seq(args.data, args.item_attributes)
    split = leave_one_out(data)
    params = json.loads(args.params)
    model = create(args.model, **params)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = evaluate(model, split.test)
    eval_s = time.perf_counter() - t0
    row = {
        "dataset": Path(args.data).name,
        "model": args.model,
        "params": params,
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.n_interactions,
        "test": test,
        "weights": [float(w) for w in getattr(model, "weights_", [])],
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "train_log": getattr(model, "train_log_", None),
    }
    print(
        json.dumps(
            {
                k: row[k]
                for k in ("model", "params", "test", "weights", "train_seconds", "eval_seconds")
            },
            indent=1,
        )
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(row, indent=1, default=str))


if __name__ == "__main__":
    main()
