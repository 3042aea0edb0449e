"""Cold-start and content benchmarks: cold items, cold users, content for warm items.

    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py cold-items-games
    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py cold-items-shop
    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py cold-users-beauty
    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py cold-users-ml100k
    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py warm-games
    nice -n 10 .venv/bin/python benchmarks/bench_cold_start.py warm-beauty
    .venv/bin/python benchmarks/bench_cold_start.py plot table

Each section writes benchmarks/results/cold_start_<section>.json; `plot` draws
benchmarks/results/cold_start.png from them. Data are read from ../shared/data (never copied).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData, align_table
from shoprec.data.splits import EvalSet, leave_one_out
from shoprec.evaluation.cold_start import (
    cold_item_split,
    cold_user_split,
    evaluate_among,
    evaluate_scores,
    fixed_scorer,
    neighbour_popularity,
    random_scorer,
)
from shoprec.features.cache import EmbeddingCache
from shoprec.features.fusion import ContentEncoder
from shoprec.models.content import ContentKNN
from shoprec.models.hybrid import HybridMF
from shoprec.pipeline.cold_start import SegmentPopularity

DATA = Path(os.environ.get("SHOPREC_DATA", "/work/shared/data"))
OUT = Path(__file__).parent / "results"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write(name: str, payload: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    payload["machine"] = "2 cores, no GPU"
    (OUT / f"cold_start_{name}.json").write_text(json.dumps(payload, indent=2))
    log(f"wrote {OUT / f'cold_start_{name}.json'}")


CACHE = Path(os.environ.get("SHOPREC_BENCH_CACHE", "/tmp/shoprec_bench_cache"))


def encoder_for(key: str, fit_table: pd.DataFrame, params: dict, images=None) -> ContentEncoder:
    """A ContentEncoder fitted on `fit_table`, with its embedding cache kept on local disk
    (outside the repo) so reruns do not re-embed unchanged titles."""
    enc = ContentEncoder(**{k: v for k, v in params.items() if k in ("text_backend", "weights")})
    enc.fit(fit_table, images)
    path = CACHE / f"{key}.npz"
    if path.exists():
        enc.cache_ = EmbeddingCache.load(path)
    return enc


def save_cache(key: str, enc: ContentEncoder) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    enc.cache_.save(CACHE / f"{key}.npz")


def zrow(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def subsample(ev: EvalSet, n: int, seed: int = 0) -> EvalSet:
    if len(ev) <= n:
        return ev
    rows = np.sort(np.random.default_rng(seed).choice(len(ev), n, replace=False))
    return EvalSet(ev.users[rows], [ev.histories[r] for r in rows], ev.targets[rows])


# ------------------------------------------------------------------------------ loaders
def load_games() -> InteractionData:
    from shoprec.data.seqformat import read_recbole_history

    data = read_recbole_history(DATA / "Amazon-Games-2018/Games-6k.test.inter")
    titles = pd.read_csv(
        DATA / "Amazon-Games-2018/Games.item", sep="\t", dtype=str, keep_default_na=False, quoting=3
    )
    titles.columns = ["item_id", "title"]
    data.item_table = align_table(titles, data.items, "item_id")
    return data


def load_beauty() -> InteractionData:
    from shoprec.data.seqformat import read_seq

    return read_seq(DATA / "Beauty/Beauty.txt", DATA / "Beauty/Beauty_item2attributes.json")


def load_ml100k() -> InteractionData:
    from shoprec.data.seqformat import _recbole_frame, read_recbole_inter

    data = read_recbole_inter(DATA / "ml-100k/ml-100k.inter")
    users = _recbole_frame(DATA / "ml-100k/ml-100k.user")
    data.user_table = align_table(
        users[["user_id", "age", "gender", "occupation"]], data.users, "user_id"
    )
    items = _recbole_frame(DATA / "ml-100k/ml-100k.item")
    items = items.rename(columns={"movie_title": "title", "class": "tags"})
    items["tags"] = items["tags"].str.split()
    data.item_table = align_table(items[["item_id", "title", "tags"]], data.items, "item_id")
    return data


def load_shop(n_users: int = 4000, n_items: int = 3000, seed: int = 0):
    from shoprec.data.synthetic import generate_shop

    shop = generate_shop(n_users=n_users, n_items=n_items, seed=seed)
    ev = shop.events[~shop.events["user_id"].isin(shop.truth["bot_ids"])]
    ev = ev[ev["event_type"].isin(["click", "add_to_cart", "purchase"])]
    ev = ev.drop_duplicates(["user_id", "item_id", "session_id"])
    data = InteractionData.from_frame(
        ev[["user_id", "item_id", "timestamp"]], item_table=shop.items, user_table=shop.users
    )
    images = {i: shop.image(i) for i in shop.items["item_id"]}
    return data, images


# ---------------------------------------------------------------------------- cold items
def cold_items(
    data: InteractionData, variants: dict[str, dict], images=None, seed: int = 0, key: str = ""
) -> dict:
    """Fit each content variant on the split's training data; rank among held-out items."""
    split = cold_item_split(data, 0.1, seed)
    cand = split.cold_test
    test = split.test
    log(f"cold items: {len(split.cold)} held out, {len(test)} test users, {len(cand)} test items")
    res: dict[str, dict] = {}
    res["random"] = evaluate_scores(random_scorer(data.n_items, seed), test, cand)
    pop_train = split.train.item_popularity()
    res["popularity (training counts)"] = evaluate_scores(fixed_scorer(pop_train), test, cand)
    oracle = data.item_popularity()
    res["oracle popularity of new items (after launch)"] = evaluate_scores(
        fixed_scorer(oracle), test, cand
    )
    full: dict[str, dict] = {
        "popularity (training counts)": evaluate_scores(fixed_scorer(pop_train), test)
    }
    for name, params in variants.items():
        t0 = time.perf_counter()
        # the encoder (TF-IDF vocabulary, image scaling) is fitted on warm items only
        warm_rows = split.train.item_table.iloc[np.flatnonzero(pop_train > 0)]
        ckey = f"{key}-{name}".replace(" ", "_").replace("+", "")
        enc = encoder_for(ckey, warm_rows, params, images)
        knn = ContentKNN(**params).fit(split.train, images=images, encoder=enc)
        save_cache(ckey, enc)
        t_enc = time.perf_counter() - t0
        res[f"content kNN [{name}]"] = evaluate_among(knn, test, cand)
        res[f"content kNN [{name}]"]["fit_seconds"] = t_enc
        npop = neighbour_popularity(knn.item_vectors_, pop_train, split.cold)
        res[f"content-neighbour popularity [{name}]"] = evaluate_scores(
            fixed_scorer(npop), test, cand
        )
        t0 = time.perf_counter()
        hyb = HybridMF(random_state=seed).fit(split.train, content=knn.item_vectors_)
        res[f"hybrid ALS + projection [{name}]"] = evaluate_among(hyb, test, cand)
        res[f"hybrid ALS + projection [{name}]"]["fit_seconds"] = time.perf_counter() - t0
        res[f"hybrid ALS + projection [{name}]"]["projection_r2"] = hyb.projection_.r2_
        hyb.content_weight = 1.0
        res[f"hybrid + content similarity [{name}]"] = evaluate_among(hyb, test, cand)
        full[f"hybrid + content similarity [{name}]"] = evaluate_among(hyb, test)
        hyb.content_weight = 0.0
        full[f"hybrid ALS + projection [{name}]"] = evaluate_among(hyb, test)
        log(
            f"  {name}: knn HR@10 {res[f'content kNN [{name}]']['HR@10']:.4f} hybrid "
            f"{res[f'hybrid ALS + projection [{name}]']['HR@10']:.4f} random {res['random']['HR@10']:.4f}"
        )
    return {
        "ranking": "among held-out test items",
        "n_candidates": int(len(cand)),
        "test_users": len(test),
        "held_out_items": int(len(split.cold)),
        "results": res,
        "full_ranking": full,
    }


def run_cold_items_games() -> None:
    data = load_games()
    log(f"games: {data.n_users} users, {data.n_items} items")
    out = cold_items(
        data,
        {"MiniLM titles": {"text_backend": "minilm"}, "TF-IDF titles": {"text_backend": "tfidf"}},
        key="games",
    )
    write("cold_items_games", {"dataset": "Amazon-Games-2018 (titles)", **out})


def run_cold_items_shop() -> None:
    data, images = load_shop()
    log(f"shop: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions")
    variants = {
        "MiniLM text + image": {"text_backend": "minilm"},
        "MiniLM text only": {"text_backend": "minilm", "weights": {"image": 0}},
        "image only": {"weights": {"text": 0, "category": 0, "brand": 0, "price": 0}},
    }
    out = cold_items(data, variants, images, key="shop")
    write("cold_items_shop", {"dataset": "synthetic shop (4000 users, 3000 items, seed 0)", **out})


# ---------------------------------------------------------------------------- cold users
def cold_users(
    data: InteractionData, content_params: dict, seed: int = 0, prior: str = "popularity"
) -> dict:
    from shoprec.models import registry

    split = cold_user_split(data, 0.2, seed=seed)
    train = split.train
    log(f"cold users: {len(split.cold_users)} held out; warm test {len(split.warm_test)}")
    seg = SegmentPopularity().fit(train)
    cold_rows_table = data.user_table

    def prior_for(ev: EvalSet, rows: np.ndarray, warm: bool) -> np.ndarray:
        if prior == "segment" and cold_rows_table is not None:
            return np.log(seg.user_scores(cold_rows_table, ev.users[rows]) + 1e-9)
        return np.tile(np.log(seg.global_ + 1e-9), (len(rows), 1))

    models = {
        "itemknn": registry.create("itemknn").fit(train),
        "hybrid ALS fold-in": HybridMF(random_state=seed).fit(
            train, content=np.zeros((train.n_items, 1), np.float32)
        ),
    }
    res: dict[str, dict] = {}
    groups = {
        "warm (leave-one-out)": split.warm_test,
        **{f"cold n={n}": ev for n, ev in split.cold.items()},
        "cold users, all but last event": split.cold_last,
    }
    for gname, ev in groups.items():
        r: dict[str, dict] = {}
        r["popularity"] = evaluate_scores(fixed_scorer(seg.global_), ev)
        if prior == "segment":
            r["segment popularity"] = evaluate_scores(
                lambda h, rows, ev=ev: seg.user_scores(cold_rows_table, ev.users[rows]), ev
            )
        for mname, model in models.items():
            for w, label in ((0.05, mname), (0.5, f"{mname} + {prior} prior")):

                def fn(h, rows, ev=ev, model=model, w=w):
                    return zrow(model.score(h)) + w * zrow(prior_for(ev, rows, False))

                r[label] = evaluate_scores(fn, ev)
        res[gname] = r
        log(f"  {gname}: " + ", ".join(f"{k} {v['NDCG@10']:.4f}" for k, v in r.items()))
    return {
        "results": res,
        "cold_users": int(len(split.cold_users)),
        "warm_test_users": len(split.warm_test),
        "note": "full ranking; warm = leave-one-out on the other users; cold n = first n events "
        "as history, event n+1 as target; model scores and prior are row-standardised, "
        "prior weight 0.05 (tie-break) or 0.5",
    }


def run_cold_users_beauty() -> None:
    data = load_beauty()
    write("cold_users_beauty", {"dataset": "Beauty", **cold_users(data, {}, prior="popularity")})


def run_cold_users_ml100k() -> None:
    data = load_ml100k()
    write("cold_users_ml100k", {"dataset": "ml-100k", **cold_users(data, {}, prior="segment")})


# ----------------------------------------------------------------------------- warm items
def blend_metrics(base, knn, ev: EvalSet, weights, batch_size: int = 1024) -> dict[float, dict]:
    """Metrics of z(base) + w * z(content) for every w, scoring each model once per batch."""
    from shoprec.evaluation.cold_start import rank_metrics
    from shoprec.models.ranking import target_ranks

    ranks: dict[float, list] = {w: [] for w in weights}
    for start in range(0, len(ev), batch_size):
        stop = min(start + batch_size, len(ev))
        h = ev.histories[start:stop]
        zb = zrow(base.score(h)).astype(np.float32)
        zc = zrow(knn.score(h)).astype(np.float32)
        for w in weights:
            ranks[w].extend(target_ranks(zb + w * zc, h, ev.targets[start:stop]))
    return {w: rank_metrics(ranks[w], ev.targets) for w in weights}


def warm(data: InteractionData, content_params: dict, n_eval: int = 10000, seed: int = 0) -> dict:
    """Leave-one-out; base model alone vs blended with content similarity (weight on valid)."""
    from shoprec.models import registry

    split = leave_one_out(data)
    valid = subsample(split.valid, n_eval, seed)
    test = subsample(split.test, n_eval, seed + 1)
    ckey = f"warm-{content_params.get('text_backend')}-{data.n_items}"
    enc = encoder_for(ckey, split.train.item_table, content_params)
    knn = ContentKNN(**content_params).fit(split.train, encoder=enc)
    save_cache(ckey, enc)
    log("content encoded")
    bases = {
        "itemknn": registry.create("itemknn").fit(split.train),
        "hybrid ALS": HybridMF(random_state=seed).fit(split.train, content=knn.item_vectors_),
    }
    res: dict[str, dict] = {"content kNN alone": evaluate_among(knn, test)}
    grid = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)
    for bname, base in bases.items():
        curve = {w: m["NDCG@10"] for w, m in blend_metrics(base, knn, valid, grid).items()}
        best_w = max(curve, key=lambda w: (curve[w], -w))
        on_test = blend_metrics(base, knn, test, (0.0, best_w))
        res[bname] = on_test[0.0]
        res[f"{bname} + content (w={best_w})"] = {**on_test[best_w], "valid_curve": curve}
        log(
            f"  {bname}: alone {on_test[0.0]['NDCG@10']:.4f}, +content w={best_w} "
            f"{on_test[best_w]['NDCG@10']:.4f}; valid {curve}"
        )
    return {
        "results": res,
        "eval_users": len(test),
        "protocol": "leave-one-out, full ranking, "
        f"{len(test)} sampled test users, blend weight chosen on {len(valid)} validation users",
    }


def run_warm_games() -> None:
    write(
        "warm_games",
        {
            "dataset": "Amazon-Games-2018 (titles, MiniLM)",
            **warm(load_games(), {"text_backend": "minilm"}, n_eval=5000),
        },
    )


def run_warm_beauty() -> None:
    write(
        "warm_beauty",
        {"dataset": "Beauty (attribute ids)", **warm(load_beauty(), {"text_backend": "tfidf"})},
    )


# ----------------------------------------------------------------------------------- plot
def run_plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    labels, vals = [], []
    for name in ("games", "shop"):
        p = OUT / f"cold_start_cold_items_{name}.json"
        if not p.exists():
            continue
        r = json.loads(p.read_text())["results"]
        for k, v in r.items():
            labels.append(f"{name}: {k}")
            vals.append(v["HR@10"])
    ax.barh(range(len(vals)), vals, color="tab:blue")
    ax.set_yticks(range(len(vals)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("HR@10 among held-out items")
    ax.set_title("Cold items")
    ax = axes[1]
    for name, marker in (("beauty", "o"), ("ml100k", "s")):
        p = OUT / f"cold_start_cold_users_{name}.json"
        if not p.exists():
            continue
        r = json.loads(p.read_text())["results"]
        ns = sorted(int(k.split("=")[1]) for k in r if k.startswith("cold n="))
        model = max(r[f"cold n={ns[-1]}"], key=lambda m: r[f"cold n={ns[-1]}"][m]["NDCG@10"])
        ax.plot(
            ns,
            [r[f"cold n={n}"][model]["NDCG@10"] for n in ns],
            marker=marker,
            label=f"{name}: {model}",
        )
        ax.axhline(
            r["warm (leave-one-out)"][model]["NDCG@10"],
            ls="--",
            lw=0.8,
            color=ax.lines[-1].get_color(),
            label=f"{name}: warm users",
        )
    ax.set_xlabel("events of the new user")
    ax.set_ylabel("NDCG@10 (full ranking)")
    ax.set_title("Cold users")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "cold_start.png", dpi=120)
    log(f"wrote {OUT / 'cold_start.png'}")


def run_table() -> None:
    """Print the JSON results as the markdown tables of BENCHMARKS.md."""
    for name in ("games", "shop"):
        p = OUT / f"cold_start_cold_items_{name}.json"
        if not p.exists():
            continue
        d = json.loads(p.read_text())
        print(
            f"\n{d['dataset']}: {d['held_out_items']} items held out, {d['test_users']} test users, "
            f"ranked among the {d['n_candidates']} held-out test items\n"
        )
        print("| method | HR@10 | NDCG@10 | HR@10 / random |\n|---|---|---|---|")
        rnd = d["results"]["random"]["HR@10"]
        for k, v in d["results"].items():
            print(f"| {k} | {v['HR@10']:.4f} | {v['NDCG@10']:.4f} | {v['HR@10'] / rnd:.1f}x |")
        print("\nFull ranking (held-out items among all items):\n")
        print("| method | HR@10 | NDCG@10 |\n|---|---|---|")
        for k, v in d["full_ranking"].items():
            print(f"| {k} | {v['HR@10']:.4f} | {v['NDCG@10']:.4f} |")
    for name in ("beauty", "ml100k"):
        p = OUT / f"cold_start_cold_users_{name}.json"
        if not p.exists():
            continue
        d = json.loads(p.read_text())
        groups = list(d["results"])
        print(f"\n{d['dataset']}: NDCG@10 (full ranking), {d['cold_users']} cold users\n")
        print("| method | " + " | ".join(groups) + " |\n" + "|---" * (len(groups) + 1) + "|")
        for m in d["results"][groups[0]]:
            print(
                f"| {m} | "
                + " | ".join(f"{d['results'][g][m]['NDCG@10']:.4f}" for g in groups)
                + " |"
            )
    for name in ("games", "beauty"):
        p = OUT / f"cold_start_warm_{name}.json"
        if not p.exists():
            continue
        d = json.loads(p.read_text())
        print(f"\n{d['dataset']}: {d['protocol']}\n")
        print("| model | HR@10 | NDCG@10 |\n|---|---|---|")
        for k, v in d["results"].items():
            print(f"| {k} | {v['HR@10']:.4f} | {v['NDCG@10']:.4f} |")


SECTIONS = {
    "cold-items-games": run_cold_items_games,
    "cold-items-shop": run_cold_items_shop,
    "cold-users-beauty": run_cold_users_beauty,
    "cold-users-ml100k": run_cold_users_ml100k,
    "warm-games": run_warm_games,
    "warm-beauty": run_warm_beauty,
    "plot": run_plot,
    "table": run_table,
}

if __name__ == "__main__":
    todo = sys.argv[1:] or [s for s in SECTIONS if s not in ("plot", "table")]
    for s in todo:
        log(f"== {s}")
        SECTIONS[s]()
