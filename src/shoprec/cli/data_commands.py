"""`shoprec ingest`, `shoprec stats`, `shoprec generate`: data in, summaries out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shoprec.cli.app import app

console = Console(stderr=True)
out = Console()


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def ingest(
    store: Annotated[str, typer.Option(help="Store URL: sqlite:///path or postgresql://...")],
    events: Annotated[Path | None, typer.Option(help="Events file")] = None,
    items: Annotated[Path | None, typer.Option(help="Catalog file")] = None,
    users: Annotated[Path | None, typer.Option(help="Users file")] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, parquet, jsonl, seq, recbole, otto, diginetica, movielens (default: from the file name)",
        ),
    ] = None,
    map: Annotated[
        str | None,
        typer.Option("--map", help="Column mapping, e.g. visitorid=user_id,itemid=item_id"),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Write rejected records here (JSON Lines)")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad record")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON")
    ] = None,
    keys_file: Annotated[
        Path | None, typer.Option(help="Pseudonym keys ('key_id secret' lines): store HMAC ids")
    ] = None,
    pii_policy: Annotated[
        str, typer.Option(help="PII in context/attributes: drop|reject")
    ] = "drop",
) -> None:
    """Validate and store events, catalog and users; bad records are named, never fatal."""
    from shoprec.data.readers import parse_mapping, read_records
    from shoprec.storage import open_store
    from shoprec.storage.ingest import IngestError, IngestReport
    from shoprec.storage.ingest import ingest as run_ingest

    if events is None and items is None and users is None:
        _fail("nothing to ingest: give --events, --items and/or --users")
    from shoprec.data.pseudonymize import KeyRing, Pseudonymizer

    try:
        boundary = Pseudonymizer(KeyRing.from_file(keys_file) if keys_file else None, pii_policy)
        mapping = parse_mapping(map)
        st = open_store(store)
    except Exception as exc:  # noqa: BLE001  a bad URL or mapping is the user's to fix
        _fail(str(exc))
    total = IngestReport()
    rej_f = open(rejects, "w", encoding="utf-8") if rejects else None
    try:
        with st:
            for kind, path in (("items", items), ("users", users), ("events", events)):
                if path is None:
                    continue
                try:
                    records = read_records(path, format, kind=kind, mapping=mapping)
                except (FileNotFoundError, ValueError) as exc:
                    _fail(str(exc))
                from tqdm import tqdm

                with tqdm(
                    desc=f"{kind} {path.name}", unit=" rec", disable=not sys.stderr.isatty()
                ) as bar:
                    try:
                        rep = run_ingest(
                            records,
                            st,
                            kind=kind,
                            rejects=rej_f,
                            strict=strict,
                            progress=bar.update,
                            boundary=boundary,
                        )
                    except IngestError as exc:
                        _fail(str(exc), code=1)
                total = total.merge(rep)
                _print_report(f"{kind}: {path}", rep)
    finally:
        if rej_f:
            rej_f.close()
    _write_json(json_out, total.as_dict())


def _print_report(title: str, rep) -> None:
    t = Table(title=title, show_header=True)
    t.add_column("accepted", justify="right")
    t.add_column("rejected", justify="right")
    t.add_column("duplicates", justify="right")
    t.add_row(str(rep.accepted), str(rep.rejected), str(rep.duplicates))
    out.print(t)
    if rep.reasons:
        r = Table(title="rejected by reason")
        r.add_column("reason")
        r.add_column("count", justify="right")
        for reason, n in sorted(rep.reasons.items(), key=lambda kv: -kv[1]):
            r.add_row(reason, str(n))
        out.print(r)


@app.command()
def stats(
    store: Annotated[str, typer.Option(help="Store URL")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON")
    ] = None,
) -> None:
    """Users, items, events by type, sparsity and long-tail figures of a store."""
    from shoprec.storage import open_store

    try:
        st = open_store(store)
    except Exception as exc:  # noqa: BLE001
        _fail(str(exc))
    with st:
        figures = st.stats()
    t = Table(title=f"store {store}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in _flatten(figures):
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    out.print(t)
    _write_json(json_out, figures)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            rows.extend(_flatten(v, f"{prefix}{k}."))
        else:
            rows.append((f"{prefix}{k}", v))
    return rows


@app.command()
def generate(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for events.csv, items.csv, users.csv, images/")
    ],
    users: Annotated[int, typer.Option(help="Number of shoppers")] = 500,
    items: Annotated[int, typer.Option(help="Number of products")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    images: Annotated[bool, typer.Option(help="Write product images as PNG")] = True,
) -> None:
    """Write the seeded synthetic shop as files ready for `shoprec ingest`."""
    from shoprec.data.synthetic import generate_shop, write_shop

    shop = generate_shop(n_users=users, n_items=items, seed=seed)
    paths = write_shop(shop, out_dir, images=images)
    t = Table(title=f"synthetic shop (seed {seed})")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for name, n in paths.items():
        t.add_row(name, str(n))
    out.print(t)
