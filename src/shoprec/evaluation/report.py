"""Turning a `Report` into the JSON contract of `shoprec evaluate` and a readable table.

JSON layout (a contract other tools read):
`{"dataset": {"users", "items", "interactions"}, "protocol": str, "results": [{"model",
"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR", "coverage@10",
"train_seconds", "eval_seconds", ...}]}`; extra keys (precision, recall, novelty,
diversity, popularity bias, slices, params) follow the required ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from shoprec.evaluation.harness import ModelResult, Report

TABLE_COLUMNS: tuple[str, ...] = (
    "HR@5",
    "HR@10",
    "HR@20",
    "NDCG@5",
    "NDCG@10",
    "NDCG@20",
    "MRR",
    "coverage@10",
)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def result_to_dict(res: ModelResult) -> dict[str, Any]:
    """One row of `results`: required keys first, then everything else measured."""
    row: dict[str, Any] = {"model": res.model}
    for key in TABLE_COLUMNS:
        row[key] = res.metrics.get(key)
    row["train_seconds"] = round(res.train_seconds, 3)
    row["eval_seconds"] = round(res.eval_seconds, 3)
    for key, value in res.metrics.items():
        row.setdefault(key, value)
    row["slices"] = res.slices
    row["params"] = res.params
    if res.chosen:
        row["chosen"] = res.chosen
    if res.note:
        row["note"] = res.note
    return _clean(row)


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "dataset": dict(report.dataset),
        "protocol": report.protocol,
        "results": [result_to_dict(r) for r in report.results],
    }


def write_json(report: Report, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report_to_dict(report), indent=2) + "\n")


def rich_table(report: Report, title: str = ""):
    """A `rich.table.Table` with one row per model."""
    from rich.table import Table

    d = report.dataset
    caption = (
        f"{d['users']:,} users, {d['items']:,} items, {d['interactions']:,} interactions; "
        f"protocol {report.protocol}, full ranking, test split"
    )
    table = Table(title=title or "shoprec evaluate", caption=caption)
    table.add_column("model", style="bold")
    for col in TABLE_COLUMNS:
        table.add_column(col, justify="right")
    table.add_column("train s", justify="right")
    table.add_column("eval s", justify="right")
    for r in report.results:
        cells = [f"{r.metrics.get(c, float('nan')):.4f}" for c in TABLE_COLUMNS]
        table.add_row(r.model, *cells, f"{r.train_seconds:.1f}", f"{r.eval_seconds:.1f}")
    return table


def slice_table(report: Report, metric: str = "NDCG@10"):
    """A `rich.table.Table`: `metric` per slice (rows) and model (columns), with user counts."""
    from rich.table import Table

    names: list[str] = []
    for r in report.results:
        names.extend(k for k in r.slices if k not in names)
    table = Table(title=f"{metric} by slice (test split)")
    table.add_column("slice")
    table.add_column("users", justify="right")
    for r in report.results:
        table.add_column(r.model, justify="right")
    for name in names:
        users = next((r.slices[name]["users"] for r in report.results if name in r.slices), 0)
        cells = [
            f"{r.slices[name][metric]:.4f}" if name in r.slices else "-" for r in report.results
        ]
        table.add_row(name, f"{users:,}", *cells)
    return table
