"""`shoprec train`: read the store, train the recommendation pipeline, write an artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shoprec.cli.app import app

console = Console(stderr=True)
out = Console()


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"Validation ({metrics.get('protocol', '')})")
    for col in ("list", "HR@10", "NDCG@10", "diversity (ILD)", "coverage", "users"):
        table.add_column(col, justify="left" if col == "list" else "right")
    for name, m in metrics.items():
        if isinstance(m, dict) and "hr@10" in m:
            table.add_row(
                name,
                f"{m['hr@10']:.4f}",
                f"{m['ndcg@10']:.4f}",
                f"{m['ild']:.3f}",
                f"{m['coverage']:.3f}",
                str(m["users"]),
            )
    return table


@app.command()
def train(
    store: Annotated[str, typer.Option(help="Store URL: sqlite:///path or postgresql://...")],
    out_dir: Annotated[Path, typer.Option("--out", help="Artifact root folder")],
    config: Annotated[Path | None, typer.Option(help="TOML configuration file")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the training summary as JSON")
    ] = None,
) -> None:
    """Train retrievers and ranker on the store's data; write a versioned artifact."""
    from shoprec.config import ConfigError, load_config
    from shoprec.pipeline.build import train_from_store

    try:
        cfg = load_config(config)
        path, result = train_from_store(store, out_dir, cfg, log=lambda m: console.print(m))
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    summary = Table(title="Artifact")
    summary.add_column("field")
    summary.add_column("value")
    summary.add_row("path", str(path))
    summary.add_row("sources", ", ".join(result.pipeline.sources))
    summary.add_row("ranker", result.pipeline.ranker.kind)
    summary.add_row("items", str(len(result.pipeline.catalog)))
    summary.add_row("users", str(len(result.pipeline.users)))
    for k, v in result.timings.items():
        summary.add_row(k, f"{v:.1f}")
    out.print(summary)
    out.print(_metrics_table(result.metrics))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(
            json.dumps(
                {"artifact": str(path), "metrics": result.metrics, "timings": result.timings},
                indent=2,
                default=str,
            )
        )
