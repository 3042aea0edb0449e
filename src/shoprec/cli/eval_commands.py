"""`shoprec evaluate`: fit models on a dataset's training split and report test figures.

The command line is a contract other tools call:
`shoprec evaluate --data PATH --format seq [--item-attributes FILE] --models NAME[,NAME...]
[--protocol loo|temporal|...] --json OUT.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shoprec.cli.app import app

console = Console(stderr=True)
out = Console()
if not out.is_terminal:
    out = Console(width=160)  # piped output: room for every column


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Dataset file")],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated registry names, or 'best'")
    ] = "best",
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="seq, recbole, csv, jsonl, parquet, otto, diginetica, movielens "
            "(default: from the file name)",
        ),
    ] = None,
    item_attributes: Annotated[
        Path | None, typer.Option("--item-attributes", help="item2attributes JSON")
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="loo (leave-one-out), temporal, random, ...")
    ] = "loo",
    params: Annotated[
        str | None,
        typer.Option("--params", help='Model parameters as JSON: {"ease": {"l2": 100}}'),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Users scored at once")] = 1024,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results as JSON here")
    ] = None,
    slices: Annotated[
        bool, typer.Option("--slices", help="Also print NDCG@10 per user / item slice")
    ] = False,
) -> None:
    """Full-ranking offline evaluation (test split) of one or more models."""
    from shoprec.evaluation.datasets import load_dataset
    from shoprec.evaluation.harness import run
    from shoprec.evaluation.report import rich_table, slice_table, write_json
    from shoprec.models import registry

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        _fail("--models needs at least one name")
    known = set(registry.available()) | {"best"}
    unknown = [n for n in names if n not in known]
    if unknown:
        _fail(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
    try:
        model_params = json.loads(params) if params else {}
    except json.JSONDecodeError as exc:
        _fail(f"--params is not valid JSON: {exc}")
    try:
        dataset = load_dataset(data, format, item_attributes)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    console.print(
        f"{data.name}: {dataset.n_users:,} users, {dataset.n_items:,} items, "
        f"{dataset.n_interactions:,} interactions; protocol {protocol}"
    )

    def show(res) -> None:
        console.print(
            f"  {res.model}: NDCG@10 {res.metrics['NDCG@10']:.4f}  HR@10 "
            f"{res.metrics['HR@10']:.4f}  (train {res.train_seconds:.1f} s, "
            f"eval {res.eval_seconds:.1f} s){'  ' + res.note if res.note else ''}"
        )

    try:
        report = run(dataset, names, protocol, model_params, batch_size=batch_size, on_result=show)
    except ValueError as exc:
        _fail(str(exc))
    out.print(rich_table(report, title=f"shoprec evaluate: {data.name}"))
    if slices:
        out.print(slice_table(report))
    if json_out is not None:
        write_json(report, json_out)
        console.print(f"wrote {json_out}")


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
