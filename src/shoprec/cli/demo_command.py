"""`shoprec demo`: the whole chain on the seeded synthetic shop, end to end, in about a minute.

generate -> ingest (SQLite) -> clean -> evaluate models (leave-one-out full ranking) -> train
the recommendation pipeline (artifact) -> show shoppers' histories and recommendations with
their reasons -> post a click and show the list change -> a brand-new shopper.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shoprec.cli.app import app

out = Console(width=None if Console().is_terminal else 120)

DEMO_MODELS = ("popularity", "itemknn", "ease", "als", "sasrec")
DEEP_MODELS = ("sasrec", "gru4rec", "two_tower", "best")


def _step(n: int, text: str) -> None:
    out.rule(f"[bold]{n}. {text}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Working folder (recreated)")] = Path(
        "demo-out"
    ),
    users: Annotated[int, typer.Option(help="Shoppers in the synthetic shop")] = 1500,
    items: Annotated[int, typer.Option(help="Products in the synthetic shop")] = 600,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    models: Annotated[
        str, typer.Option(help="Models to compare (those not installed are skipped)")
    ] = ",".join(DEMO_MODELS),
    budget: Annotated[float, typer.Option(help="Training seconds per deep model")] = 30.0,
) -> None:
    """Run the main job end to end on the bundled synthetic shop (SQLite)."""
    from shoprec.config import Config
    from shoprec.data.readers import read_records
    from shoprec.data.synthetic import generate_shop, write_shop
    from shoprec.evaluation.harness import run as run_evaluation
    from shoprec.evaluation.report import rich_table
    from shoprec.models import registry
    from shoprec.pipeline.build import interactions_from_frames, train_artifact
    from shoprec.pipeline.config import PipelineConfig
    from shoprec.pipeline.request import RecRequest
    from shoprec.storage import open_store
    from shoprec.storage.ingest import ingest

    t_start = time.perf_counter()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cfg = Config()

    _step(1, f"Generate the synthetic shop ({users} shoppers, {items} products, seed {seed})")
    shop = generate_shop(n_users=users, n_items=items, seed=seed)
    files = write_shop(shop, out_dir / "shop", images=True)
    out.print(", ".join(f"{k}: {v}" for k, v in files.items()))

    _step(2, "Ingest into SQLite (validated, deduplicated)")
    url = f"sqlite:///{out_dir / 'shop.db'}"
    with open_store(url) as store:
        t = Table("file", "accepted", "rejected", "duplicates")
        for kind, name in (
            ("items", "items.csv"),
            ("users", "users.csv"),
            ("events", "events.csv"),
        ):
            rep = ingest(read_records(out_dir / "shop" / name, kind=kind), store, kind=kind)
            t.add_row(name, str(rep.accepted), str(rep.rejected), str(rep.duplicates))
        out.print(t)
        events, item_frame, user_frame = (
            store.events_frame(),
            store.items_frame(),
            store.users_frame(),
        )

    _step(3, "Clean: drop bots, weight event types, collapse repeats")
    data = interactions_from_frames(events, item_frame, user_frame, cfg)
    out.print(
        f"{len(events)} events -> {data.n_interactions} interactions "
        f"({data.n_users} shoppers x {data.n_items} products)"
    )

    _step(4, "Compare models: leave-one-out, full ranking, test set")
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    names = [m for m in wanted if m in registry.available() or m == "best"]
    skipped = sorted(set(wanted) - set(names))
    if skipped:
        out.print(f"not installed, skipped: {', '.join(skipped)}")
    params = {m: {"max_seconds": budget} for m in DEEP_MODELS if m in names and m != "best"}
    report = run_evaluation(data, names, "loo", params=params)
    out.print(rich_table(report, title="Test-set accuracy"))

    _step(5, "Train the recommendation pipeline and write a versioned artifact")
    retrieval = tuple(m for m in ("ease", "sasrec") if m in registry.available())
    pcfg = PipelineConfig(
        models=retrieval, model_params={"sasrec": {"max_seconds": budget}}, ranker_max_users=800
    )
    path, result = train_artifact(
        data, out_dir / "artifacts", pcfg, log=lambda m: out.print(f"  [dim]{m}[/dim]")
    )
    pipe = result.pipeline
    out.print(f"artifact {path.name}: sources {', '.join(pipe.sources)}; ranker {pipe.ranker.kind}")
    for name, m in result.metrics.items():
        if isinstance(m, dict) and "ndcg@10" in m:
            out.print(
                f"  validation {name:>12}: NDCG@10 {m['ndcg@10']:.4f}  HR@10 {m['hr@10']:.4f}"
            )

    _step(6, "Shoppers, their latest events, and what shoprec recommends (with reasons)")
    titles = shop.items.set_index("item_id")["title"].to_dict()
    cats = shop.items.set_index("item_id")["category"].to_dict()
    by_user = events.sort_values("timestamp").groupby("user_id")
    known = [
        u for u in shop.users["user_id"] if u in by_user.groups and len(by_user.get_group(u)) >= 8
    ]
    shown: dict[str, tuple] = {}  # user -> (history events, recommendations)
    for user_id in known[:3]:
        hist = by_user.get_group(user_id).tail(30)
        events_seen = _as_events(hist)
        recs = pipe.recommend(RecRequest(user_id=user_id, k=5, history=events_seen))
        shown[user_id] = (events_seen, recs)
        _show_user(user_id, hist.tail(5), recs, titles, cats)

    _step(7, "Feedback: the shopper clicks something new; the next list changes at once")
    user_id = known[0]
    hist = by_user.get_group(user_id).tail(30)
    events_seen, before = shown[user_id]
    other = shop.items[(shop.items["category"] != cats[hist.item_id.iloc[-1]])]["item_id"].iloc[0]
    now = float(hist.timestamp.max()) + 60
    clicked = (
        *events_seen,
        (other, "view", now),
        (other, "click", now + 5),
        (other, "add_to_cart", now + 30),
    )
    after = pipe.recommend(RecRequest(user_id=user_id, k=5, history=clicked))
    out.print(f"{user_id} adds [bold]{titles[other]}[/bold] ({cats[other]}) to the cart")
    t = Table("#", "before", "after")
    for i in range(5):
        t.add_row(
            str(i + 1),
            titles.get(before[i].item_id, before[i].item_id) if i < len(before) else "",
            titles.get(after[i].item_id, after[i].item_id) if i < len(after) else "",
        )
    out.print(t)

    _step(8, "A brand-new shopper (no history): onboarding list")
    _show_user(
        "new-visitor", None, pipe.recommend(RecRequest(user_id="new-visitor", k=5)), titles, cats
    )
    out.print(
        f"\n[green]demo finished in {time.perf_counter() - t_start:.1f}s[/green]; "
        f"files under {out_dir}/, serve it with:\n  shoprec serve --artifacts {out_dir / 'artifacts'} --store {url}"
    )


def _as_events(frame) -> tuple[tuple[str, str, float], ...]:
    """(item_id, event_type, timestamp) per row, oldest first: a request's history."""
    return tuple((r.item_id, r.event_type, float(r.timestamp)) for r in frame.itertuples())


def _show_user(user_id, hist, recs, titles, cats) -> None:
    if hist is not None:
        t = Table(title=f"{user_id}: latest events", show_lines=False)
        t.add_column("event")
        t.add_column("product")
        t.add_column("category")
        for r in hist.itertuples():
            t.add_row(r.event_type, titles.get(r.item_id, r.item_id), cats.get(r.item_id, ""))
        out.print(t)
    t = Table(title=f"{user_id}: recommendations")
    t.add_column("#", justify="right")
    t.add_column("product")
    t.add_column("category")
    t.add_column("why")
    for i, rec in enumerate(recs, 1):
        ex = rec.explanation
        why = "; ".join([*ex.get("evidence", [])[:2], *ex.get("adjustments", [])[:1]])
        t.add_row(str(i), titles.get(rec.item_id, rec.item_id), cats.get(rec.item_id, ""), why)
    out.print(t)
