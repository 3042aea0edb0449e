"""Accuracy benchmark: `shoprec evaluate` on the public datasets, one JSON per dataset.

    nice -n 10 .venv/bin/python benchmarks/bench_accuracy.py --datasets beauty,ml-1m \
        --models popularity,trending,itemknn,ease,als,bpr

Leave-one-out full ranking over all items, history masked (shared/data/README.md). Writes
`benchmarks/results/accuracy_<tag>_<dataset>.json` in the `shoprec evaluate --json` layout,
plus the machine and the exact command. Datasets are read in place, never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from shoprec.evaluation.datasets import load_dataset
from shoprec.evaluation.harness import run
from shoprec.evaluation.report import report_to_dict

DATASETS: dict[str, tuple[str, str, str | None]] = {
    # name: (file under the data root, format, item attributes or None)
    "beauty": ("Beauty/Beauty.txt", "seq", "Beauty/Beauty_item2attributes.json"),
    "ml-1m": ("ml-1m/ml-1m.txt.gz", "seq", None),
    "lastfm": ("LastFM/LastFM.txt", "seq", "LastFM/LastFM_item2attributes.json"),
    # one row per user: history + target = the full sequence
    "games": ("Amazon-Games-2018/Games-6k.test.inter", "recbole", None),
    "ml-100k": ("ml-100k/ml-100k.inter", "recbole", None),
}
CLASSIC = "popularity,trending,itemknn,itemknn_seq,ease,als,bpr"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default=CLASSIC)
    ap.add_argument("--protocol", default="loo")
    ap.add_argument("--params", default=None, help='JSON, e.g. {"ease": {"l2": 100}}')
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--tag", default="classic", help="file name tag: accuracy_<tag>_<dataset>")
    ap.add_argument("--table", action="store_true", help="print Markdown rows from saved JSON")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_rows(Path(args.out), args.tag, [d for d in args.datasets.split(",") if d]))
        return 0

    names = [m for m in args.models.split(",") if m]
    params = json.loads(args.params) if args.params else {}
    root = Path(args.data_root)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for ds in [d for d in args.datasets.split(",") if d]:
        if ds not in DATASETS:
            ap.error(f"unknown dataset {ds}; known: {', '.join(DATASETS)}")
        rel, fmt, attrs = DATASETS[ds]
        t0 = time.perf_counter()
        data = load_dataset(root / rel, fmt, root / attrs if attrs else None)
        load_s = time.perf_counter() - t0
        print(f"== {ds}: {data.n_users} users, {data.n_items} items, "
              f"{data.n_interactions} interactions (read in {load_s:.1f} s)", flush=True)  # fmt: skip

        def show(res) -> None:
            m = res.metrics
            print(
                f"  {res.model:12s} HR@10 {m['HR@10']:.4f} NDCG@10 {m['NDCG@10']:.4f} "
                f"train {res.train_seconds:.1f}s eval {res.eval_seconds:.1f}s {res.note}",
                flush=True,
            )

        report = run(data, names, args.protocol, params, on_result=show)
        payload = report_to_dict(report)
        payload["dataset"]["name"] = ds
        payload["machine"] = {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "gpu": False,
        }
        payload["command"] = "nice -n 10 .venv/bin/python " + " ".join(
            [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]
        )
        path = out_dir / f"accuracy_{args.tag}_{ds}.json"
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"  wrote {path}", flush=True)
    return 0


def markdown_rows(out_dir: Path, tag: str, datasets: list[str]) -> str:
    """One Markdown table row per (dataset, model) from saved result files.

    `tag` may list several tags ("classic,mf"): a model found under a later tag replaces
    the same model's row from an earlier one (a re-run of some models).
    """
    cols = ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20"]
    lines = [
        "| dataset | model | " + " | ".join(cols) + " | train s | eval s |",
        "|---|---|" + "---|" * (len(cols) + 2),
    ]
    for ds in datasets:
        rows: dict[str, dict] = {}
        for t in tag.split(","):
            path = out_dir / f"accuracy_{t}_{ds}.json"
            if path.exists():
                rows.update({r["model"]: r for r in json.loads(path.read_text())["results"]})
        for r in rows.values():
            vals = " | ".join(f"{r[c]:.4f}" for c in cols)
            lines.append(
                f"| {ds} | {r['model']} | {vals} | {r['train_seconds']:.1f} | "
                f"{r['eval_seconds']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
