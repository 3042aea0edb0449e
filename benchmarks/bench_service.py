"""Latency and throughput of GET /v1/recommendations against a real uvicorn server.

Setups (each a real pipeline artifact from `build_pipeline`: trending, item-to-item, content,
new items, onboarding, plus a 64-d item-vector source; weighted ranker; SQLite store; response
cache off, so every request reads the shopper's history and runs the whole chain: retrieve,
rank, every re-ranker, explanations):

- ``exact``: a synthetic shop (`shoprec.data.synthetic`) with 100k items and ~1M events; the
  vector sources (content, new items, the 64-d vectors) scan every item
  (``PipelineConfig(vector_index="exact")``).
- ``hnsw``: the same shop with the default ``vector_index="auto"``, which searches a faiss
  HNSW graph from 50k items on (`shoprec.pipeline.vector_index`).
- ``ann``: the same events in a 1M-item catalog (the shop's items plus generated ones), auto
  (HNSW) vector search.
- ``NAME_2workers``: NAME served by ``shoprec serve --workers 2`` with online state in Redis
  (the throughput setup for the 2 cores); the others run one uvicorn worker with online state
  in process.

The load comes from a separate client process (asyncio + uvloop, keep-alive HTTP/1.1 on raw
streams, so the client costs little of the shared CPU; its CPU per request is reported, and so
is the server's, all worker processes together): one connection for latency at low
concurrency, then several connections for throughput. Also measured in process: one brute-force
scan of all item vectors (the physical reference), one HNSW search, and `Pipeline.recommend`
alone.

Run (2 cores, no GPU; the build is cached under --work, build it with ``nice``)::

    .venv/bin/python benchmarks/bench_service.py --work /tmp/shoprec-bench --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.pipeline.model_retrievers import ContentRetriever
from shoprec.pipeline.vector_index import VectorIndex

DIM = 64
HNSW_M = 16


# ----------------------------------------------------------------------------- build
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def clustered_vectors(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """64-d item vectors: a random centroid per category plus noise, shape (n_items, DIM)."""
    centroids = rng.normal(size=(int(category.max()) + 1, DIM)).astype(np.float32)
    noise = rng.normal(size=(len(category), DIM)).astype(np.float32)
    return centroids[category] + 0.8 * noise


def build(
    work: Path,
    n_items: int,
    n_users: int,
    ann_items: int,
    stages: tuple[str, ...] = ("exact", "hnsw", "ann"),
) -> dict[str, Any]:
    """Shop -> store -> the artifacts of `stages` (exact, hnsw, ann); each skipped when
    already built."""

    from shoprec.data.synthetic import generate_shop
    from shoprec.pipeline import PipelineConfig
    from shoprec.storage import open_store
    from shoprec.types import Event, Item

    # Stages are resumable: build.json records each finished stage, so an interrupted build
    # (or a rerun) picks up where it stopped.
    meta_path = work / "build.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("complete") or all(key in meta for key in stages):
        return meta
    meta.setdefault("timings_s", {})
    work.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        meta_path.write_text(json.dumps(meta))

    store_url = f"sqlite:///{work / 'store.db'}"
    meta["store_url"] = store_url
    if "stored_events" not in meta:
        t = time.perf_counter()
        shop = generate_shop(n_users=n_users, n_items=n_items, seed=0, n_bots=0)
        events, items = shop.events, shop.items
        meta["timings_s"]["generate"] = time.perf_counter() - t
        log(f"generated {len(events)} events, {len(items)} items")
        t = time.perf_counter()
        with open_store(store_url) as store:
            store.upsert_items(
                [
                    Item(**{k: (None if v != v else v) for k, v in r.items()})
                    for r in items.to_dict("records")
                ]
            )
            ev = events.astype({"item_id": str, "user_id": str})
            for start in range(0, len(ev), 200_000):
                chunk = ev.iloc[start : start + 200_000]
                store.add_events(
                    [
                        Event(u, i, et, float(ts), None, str(s), None, str(e))
                        for u, i, et, ts, s, e in zip(
                            chunk.user_id,
                            chunk.item_id,
                            chunk.event_type,
                            chunk.timestamp,
                            chunk.session_id,
                            chunk.event_id,
                            strict=True,
                        )
                    ]
                )
            meta["stored_events"] = store.count_events()
        meta["timings_s"]["store"] = time.perf_counter() - t
        log(f"stored {meta['stored_events']} events")
        save()
    with open_store(store_url) as store:
        items_frame, events_frame = store.items_frame(), store.events_frame()
    if "users" not in meta:
        users = events_frame["user_id"].astype(str).unique()
        pick = np.random.default_rng(3).choice(users, min(5000, len(users)), replace=False)
        meta["users"] = pick.tolist()
        save()

    # one artifact per stage; each stage draws its vectors from its own seeded generator
    for key, index, items in (
        ("exact", "exact", 0),
        ("hnsw", "auto", 0),
        ("ann", "auto", ann_items),
    ):
        if key not in meta and key in stages:
            cfg = PipelineConfig(ranker="weighted", vector_index=index)
            build_stage(work, meta, key, events_frame, items_frame, cfg, items)
            save()
    meta["complete"] = all(key in meta for key in ("exact", "hnsw", "ann"))
    save()
    return meta


def build_stage(
    work: Path,
    meta: dict[str, Any],
    key: str,
    events_frame: Any,
    items_frame: Any,
    cfg: Any,
    n_items: int,
) -> None:
    """One artifact: the shop's catalog (or, with `n_items`, the shop's items plus generated
    ones up to `n_items`, same events), `build_pipeline`'s sources plus a 64-d vector source;
    `cfg.vector_index` decides scan or HNSW (auto: HNSW from `ann_min_items` items on)."""
    import faiss
    import pandas as pd

    from shoprec.config import Config
    from shoprec.pipeline.build import build_pipeline, interactions_from_frames
    from shoprec.pipeline.persist import save_artifact

    # one OpenMP thread: on a shared, busy machine OpenMP barriers spin and crawl
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    items = items_frame
    if n_items > len(items_frame):
        cats = items_frame["category"].astype(str).to_numpy()
        extra = n_items - len(items_frame)
        items = pd.concat(
            [
                items_frame[
                    ["item_id", "category", "price", "stock", "created_at", "active", "title"]
                ],
                pd.DataFrame(
                    {
                        "item_id": [f"X{i:07d}" for i in range(extra)],
                        "category": rng.choice(np.unique(cats), extra),
                        "price": np.round(rng.lognormal(3.5, 0.6, extra), 2),
                        "stock": rng.integers(1, 100, extra),
                        "created_at": 1.76e9,
                        "active": True,
                        "title": "",
                    }
                ),
            ],
            ignore_index=True,
        )
    data = interactions_from_frames(events_frame, items, None, Config())
    pipe = build_pipeline(data, cfg)
    t_vec = time.perf_counter()
    vectors = ContentRetriever(
        clustered_vectors(pipe.catalog.category, rng),
        "vectors",
        index=cfg.vector_index,
        neighbours=cfg.vector_neighbours,
    )
    meta.setdefault("vector_source_build_s", {})[key] = time.perf_counter() - t_vec
    pipe.add_retriever(vectors)
    path = save_artifact(pipe, work / key)
    if key == "ann":
        np.save(work / "ann_vectors.npy", vectors.vectors_)
    meta["timings_s"][f"build_{key}"] = time.perf_counter() - t
    meta[key] = {
        "artifact": str(path),
        "items": len(pipe.catalog),
        "ranker": pipe.ranker.kind,
        "sources": pipe.sources,
        "vector_search": {
            name: r.index_.kind for name, r in pipe.retrievers.items() if hasattr(r, "index_")
        },
        "interactions": data.n_interactions,
    }
    log(f"{key} artifact {path.name}: {meta[key]}, {meta['timings_s'][f'build_{key}']:.0f}s")


def add_neighbours(work: Path, meta: dict[str, Any], key: str, n: int) -> None:
    """Give a built artifact's vector sources (content, new items, 64-d vectors) per-item
    neighbour lists of `n` items (`PipelineConfig.vector_neighbours`; 0: none, search per
    request) and save it as a new version; the old one stays as `artifact_search`."""
    import faiss

    from shoprec.pipeline.new_items import NewItemsRetriever
    from shoprec.pipeline.persist import load_artifact, save_artifact

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    base = meta[key]
    pipe = load_artifact(base.get("artifact_search", base["artifact"]))
    timings = {}
    for r in pipe.retrievers.values():
        if isinstance(r, ContentRetriever | NewItemsRetriever):
            t0 = time.perf_counter()
            r.build_neighbours(n)
            timings[r.name] = time.perf_counter() - t0
            log(f"{key}: {r.name} lists of {n} in {timings[r.name]:.0f}s")
    path = save_artifact(pipe, work / key)
    base.setdefault("artifact_search", base["artifact"])
    base["artifact"] = str(path)
    base["neighbours"] = n
    base["neighbour_lists_s"] = timings
    meta["timings_s"][f"neighbours_{key}"] = time.perf_counter() - t
    log(f"{key}: artifact with neighbour lists {path.name}")


# ----------------------------------------------------------------------------- references
def scan_references(
    work: Path, exact_items: int, ann_artifact: str, repeats: int = 50
) -> dict[str, Any]:
    """One brute-force scan (matrix-vector product + top 200) over 100k and 1M vectors, and one
    search of the ann artifact's HNSW index over 1M, median milliseconds, single thread."""
    import faiss
    from threadpoolctl import threadpool_limits

    from shoprec.pipeline.retrievers import top_n

    faiss.omp_set_num_threads(1)
    vec = np.load(work / "ann_vectors.npy")
    rng = np.random.default_rng(2)
    queries = vec[rng.integers(0, len(vec), repeats)]
    out: dict[str, Any] = {}
    with threadpool_limits(1):
        for name, mat in (("scan_100k", vec[:exact_items]), ("scan_1m", vec)):
            times = []
            for q in queries:
                t = time.perf_counter()
                top_n(mat @ q, 200)
                times.append(time.perf_counter() - t)
            out[name + "_ms"] = 1e3 * float(np.median(times))
        [folder] = Path(ann_artifact).glob("retrievers/*-vectors")
        index: VectorIndex = ContentRetriever.load(folder).index_
        exact_top = [set(top_n(vec @ q, 200).tolist()) for q in queries[:20]]
        times, recall = [], []
        for i, q in enumerate(queries):
            t = time.perf_counter()
            items, _ = index.search(q, 200)
            times.append(time.perf_counter() - t)
            if i < 20:
                recall.append(len(exact_top[i] & set(items.tolist())) / 200)
        out["hnsw_1m_ms"] = 1e3 * float(np.median(times))
        out["hnsw_1m_recall_at_200"] = float(np.mean(recall))
    out["rows_small"], out["rows_large"] = int(min(exact_items, len(vec))), int(len(vec))
    return out


def pipeline_in_process(
    artifact: str, store_url: str, users: list[str], n: int = 2000
) -> dict[str, float]:
    """`Pipeline.recommend` alone (no HTTP), with each shopper's stored history (90 % known
    shoppers, 10 % strangers, as the client sends): median and p99 wall ms and mean CPU ms,
    so the service's own share of the HTTP latency can be told apart."""
    from threadpoolctl import threadpool_limits

    from shoprec.pipeline.persist import load_artifact
    from shoprec.pipeline.request import RecRequest
    from shoprec.storage import open_store

    pipe = load_artifact(artifact)
    known = users[:450]
    with open_store(store_url) as store:
        hist = {u: tuple(e for e in store.user_events(u, 50) if e.item_id) for u in known}
    ids = known + [f"stranger-{i}" for i in range(50)]
    times, cpu = [], []
    with threadpool_limits(1):
        for u in ids[:100]:  # warm-up
            pipe.recommend(RecRequest(user_id=u, k=10, history=hist.get(u, ())))
        for i in range(n):
            u = ids[i % len(ids)]
            t, c = time.perf_counter(), time.thread_time()
            pipe.recommend(RecRequest(user_id=u, k=10, history=hist.get(u, ())))
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
    ms = 1e3 * np.array(times)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "cpu_mean_ms": 1e3 * float(np.mean(cpu)),
        "requests": n,
    }


def stage_costs(artifact: str, store_url: str, users: list[str], n: int = 3000) -> dict:
    """CPU ms (thread time) of each stage of `Pipeline.recommend`, mean over `n` requests
    (90 % known shoppers, 10 % strangers): where a request's time goes."""
    from collections import defaultdict

    from threadpoolctl import threadpool_limits

    from shoprec.pipeline.candidates import merge
    from shoprec.pipeline.persist import load_artifact
    from shoprec.pipeline.request import RecRequest
    from shoprec.storage import open_store

    pipe = load_artifact(artifact)
    known = users[:450]
    with open_store(store_url) as store:
        hist = {u: tuple(e for e in store.user_events(u, 50) if e.item_id) for u in known}
    reqs = [RecRequest(user_id=u, k=10, history=hist.get(u, ())) for u in known]
    reqs += [RecRequest(user_id=f"stranger-{i}", k=10) for i in range(50)]
    cost: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, f: Any, *a: Any) -> Any:
        t = time.thread_time()
        out = f(*a)
        cost[name].append(time.thread_time() - t)
        return out

    with threadpool_limits(1):
        for r in reqs[:100]:
            pipe.recommend(r)
        for i in range(n):
            t = time.thread_time()
            q = timed("resolve request", pipe.resolve, reqs[i % len(reqs)])
            parts = [
                timed(f"retrieve: {name}", r.retrieve, q, pipe.config.n_candidates)
                for name, r in pipe.retrievers.items()
            ]
            c = timed("merge", merge, parts)
            c = timed("rank", (pipe.fallback_ranker if q.cold else pipe.ranker).rank, q, c)
            cut_at = len(pipe.rerankers)  # as `Pipeline.run`: the top-k-only tail gets k rows
            while cut_at and pipe.rerankers[cut_at - 1].top_k_only:
                cut_at -= 1
            for j, stage in enumerate(pipe.rerankers):
                if j == cut_at:
                    c = c.cut(q.k)
                c = timed(f"re-rank: {stage.name}", stage.rerank, q, c)
            timed("explain and shape", pipe._to_recs, c.head(q.k), q)
            cost["total"].append(time.thread_time() - t)
    return {name: 1e3 * float(np.mean(v)) for name, v in cost.items()}


def framework_costs(artifact: str, store_url: str, users: list[str], n: int = 2000) -> dict:
    """CPU ms per request (process time, all threads) of the app called in process through
    ASGI, no HTTP parsing or sockets: `GET /health`, `GET /v1/recommendations` with the
    pipeline replaced by a stub returning a fixed list (routing, auth, validation, history
    read, response), the history read alone, and the real route."""
    import asyncio

    from threadpoolctl import threadpool_limits

    from shoprec.serving.app import create_app
    from shoprec.serving.settings import ServingSettings
    from shoprec.serving.state import RecQuery

    settings = ServingSettings(
        artifacts=artifact,
        store_url=store_url,
        cache_size=0,
        rate_limit_per_s=0.0,
        reload_poll_s=0.0,
    )
    app = create_app(settings)
    known = users[:450]

    async def call(path: str, query: bytes = b"") -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        status = 0

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def timed(label: str, make: Any) -> float:
        for i in range(50):
            assert await make(i) == 200, label
        t = time.process_time()
        for i in range(n):
            await make(i)
        return 1e3 * (time.process_time() - t) / n

    def rec(i: int) -> Any:
        return call("/v1/recommendations", f"user_id={known[i % len(known)]}&k=10".encode())

    async def run() -> dict:
        out: dict[str, float] = {}
        async with app.router.lifespan_context(app):
            state = app.state.service
            out["GET /health"] = await timed("health", lambda i: call("/health"))
            out["GET /v1/recommendations"] = await timed("rec", rec)
            t = time.process_time()
            for i in range(n):
                state.request(known[i % len(known)], RecQuery(10))
            out["history read + request (no route)"] = 1e3 * (time.process_time() - t) / n
            pipe = state.models.current.pipeline
            fixed = list(pipe.recommend(state.request(known[0], RecQuery(10))))
            real = pipe.recommend
            pipe.recommend = lambda request: fixed
            try:
                out["GET /v1/recommendations, pipeline stubbed"] = await timed("stub", rec)
            finally:
                pipe.recommend = real
        return out

    with threadpool_limits(1):
        return asyncio.run(run())


def hnsw_vs_exact(meta: dict[str, Any], n: int = 1000, n_sources: int = 300) -> dict[str, Any]:
    """How much HNSW changes what is served on the 100k shop: top-10 overlap of the exact
    and hnsw artifacts' lists (exploration off, so only the vector search differs), and each
    vector source's recall@200 against its scan."""
    from shoprec.pipeline.persist import load_artifact
    from shoprec.pipeline.request import RecRequest
    from shoprec.storage import open_store

    users = meta["users"][:n]
    with open_store(meta["store_url"]) as store:
        hist = {u: tuple(e for e in store.user_events(u, 50) if e.item_id) for u in users}
    lists: dict[str, list[list[str]]] = {}
    found: dict[str, dict[str, list[set[int]]]] = {}
    for key in ("exact", "hnsw"):
        pipe = load_artifact(meta[key]["artifact"])
        pipe.exploration.slots = 0
        reqs = [RecRequest(user_id=u, k=10, history=hist[u]) for u in users]
        lists[key] = [[r.item_id for r in pipe.recommend(q)] for q in reqs]
        found[key] = {}
        for q in reqs[:n_sources]:
            query = pipe.resolve(q)
            for name in meta[key]["vector_search"] | {"new_items": ""}:
                items = pipe.retrievers[name].retrieve(query, pipe.config.n_candidates).items
                found[key].setdefault(name, []).append(set(items.tolist()))
        del pipe
    overlap = [
        len(set(a) & set(b)) / 10 for a, b in zip(lists["exact"], lists["hnsw"], strict=True)
    ]
    return {
        "shoppers": len(users),
        "top10_overlap": float(np.mean(overlap)),
        "identical_lists": float(np.mean([a == b for a, b in zip(*lists.values(), strict=True)])),
        "recall_at_200": {
            name: float(
                np.mean(
                    [
                        len(a & b) / max(1, len(a))
                        for a, b in zip(sets, found["hnsw"][name], strict=True)
                    ]
                )
            )
            for name, sets in found["exact"].items()
        },
    }


# ----------------------------------------------------------------------------- server
def serve(args: argparse.Namespace) -> None:
    """The server process: `shoprec serve`'s app and uvicorn options, response cache off."""
    import uvicorn

    from shoprec.cli.serve_commands import uvicorn_options
    from shoprec.serving.app import create_app
    from shoprec.serving.settings import ServingSettings

    settings = ServingSettings(
        artifacts=args.artifacts,
        store_url=args.store,
        cache_size=0,
        rate_limit_per_s=0.0,
        reload_poll_s=0.0,
    )
    uvicorn.run(create_app(settings), **uvicorn_options("127.0.0.1", args.port, "warning"))


def start_server(
    artifacts: str, store: str, port: int, work: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    """One worker: this script's `serve` (the hnsw kind registered). Several: `shoprec serve
    --workers N` with online state in Redis (the exact artifact needs no extra kind)."""
    import httpx

    if workers == 1:
        cmd = [
            sys.executable,
            __file__,
            "serve",
            "--artifacts",
            artifacts,
            "--store",
            store,
            "--port",
            str(port),
        ]
    else:
        prefix = f"shoprec-bench-{port}:"
        cmd = [
            sys.executable,
            "-c",
            "from shoprec.cli import app; app()",
            "serve",
            "--artifacts",
            artifacts,
            "--store",
            store,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--online",
            f"redis://127.0.0.1:6379/0?prefix={prefix}",
            "--rate-limit",
            "0",
            "--reload-poll",
            "0",
            "--log-level",
            "warning",
        ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "SHOPREC_CACHE_SIZE": "0",
    }
    proc = subprocess.Popen(
        cmd, stdout=open(work / "server.log", "ab"), stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: see {work / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start")


# ----------------------------------------------------------------------------- client
async def _worker(
    port: int, paths: list[str], until: float, lat: list[float], errors: list[str], k: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rnd = random.Random(id(lat) ^ len(paths))
    try:
        while time.perf_counter() < until:
            path = paths[rnd.randrange(len(paths))]
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            if not head.startswith(b"HTTP/1.1 200") or body.count(b'"item_id"') != k:
                errors.append(head.split(b"\r\n")[0].decode())
    finally:
        writer.close()


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total


async def _drive(
    port: int, paths: list[str], conns: int, seconds: float, k: int, server_pid: int = 0
) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    server0 = tree_cpu_s(server_pid) if server_pid else 0.0
    client0 = time.process_time()
    until = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*[_worker(port, paths, until, lat, errors, k) for _ in range(conns)])
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - client0
    server_cpu = tree_cpu_s(server_pid) - server0 if server_pid else float("nan")
    ms = 1e3 * np.array(lat)
    return {
        "connections": conns,
        "requests": len(lat),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": wall,
        "rps": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        # CPU per request: the server (all its processes) and this client, so the share of
        # the two cores each took can be told apart
        "server_cpu_ms_per_request": 1e3 * server_cpu / max(1, len(lat)),
        "client_cpu_ms_per_request": 1e3 * client_cpu / max(1, len(lat)),
        "load_average_1min": os.getloadavg()[0],
    }


def client(args: argparse.Namespace) -> None:
    """The client process: warm up, then each load level; JSON on stdout."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    users = json.loads(Path(args.users).read_text())
    rnd = random.Random(0)
    # 90% known shoppers (stored history), 10% strangers (cold start)
    ids = users + [f"stranger-{i}" for i in range(len(users) // 9)]
    rnd.shuffle(ids)
    paths = [f"/v1/recommendations?user_id={u}&k={args.k}" for u in ids]
    if args.k == 0:  # the floor: GET /health through the same server and client
        paths = ["/health"]
    asyncio.run(_drive(args.port, paths, 1, args.warmup, args.k))
    out = [
        asyncio.run(_drive(args.port, paths, c, args.seconds, args.k, args.server_pid))
        for c in args.connections
    ]
    print(json.dumps(out))


def run_client(
    port: int, users_file: Path, seconds: float, connections: list[int], k: int, server_pid: int
) -> list[dict[str, Any]]:
    cmd = [
        sys.executable,
        __file__,
        "client",
        "--port",
        str(port),
        "--users",
        str(users_file),
        "--seconds",
        str(seconds),
        "--k",
        str(k),
        "--warmup",
        "3",
        "--server-pid",
        str(server_pid),
        "--connections",
        *map(str, connections),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def markdown(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md tables for a result JSON (so the figures there are the JSON's)."""
    lines = [
        "| setup | items | workers | connections | requests/s | p50 ms | p95 ms | p99 ms | "
        "errors | server CPU ms/req | client CPU ms/req | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, items: str, workers: Any, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {items} | {workers} | {r['connections']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
            f"{r.get('server_cpu_ms_per_request', float('nan')):.2f} | "
            f"{r.get('client_cpu_ms_per_request', float('nan')):.2f} | "
            f"{r.get('load_average_1min', float('nan')):.1f} |"
        )

    for name, setup in result["setups"].items():
        for r in setup["runs"]:
            lines.append(row(name, f"{setup['items']:,}", setup["workers"], r))
    floor = result.get("health_floor")
    if floor:
        lines.append(row("GET /health (HTTP floor)", "", 1, floor))
    ref = result.get("references", {})
    if ref:
        lines += [
            "",
            "| one query, in process, 1 thread | median ms |",
            "|---|---:|",
            f"| brute-force scan, {ref['rows_small']:,} x {DIM} float32 + top 200 | "
            f"{ref['scan_100k_ms']:.2f} |",
            f"| brute-force scan, {ref['rows_large']:,} x {DIM} float32 + top 200 | "
            f"{ref['scan_1m_ms']:.2f} |",
            f"| faiss HNSW (M={HNSW_M}, efSearch 256) search, {ref['rows_large']:,} x {DIM}, "
            f"top 200 (recall@200 vs the scan: {ref['hnsw_1m_recall_at_200']:.2f}) | "
            f"{ref['hnsw_1m_ms']:.2f} |",
        ]
        for setup in ("exact", "hnsw", "ann"):
            if f"pipeline_{setup}" in ref:
                r = ref[f"pipeline_{setup}"]
                lines.append(
                    f"| `Pipeline.recommend` alone, {setup} artifact, k=10 (p99 {r['p99_ms']:.2f}; "
                    f"CPU mean {r['cpu_mean_ms']:.2f}) | {r['p50_ms']:.2f} |"
                )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("serve")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--port", type=int, required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--users", required=True)
    c.add_argument("--seconds", type=float, default=15)
    c.add_argument("--warmup", type=float, default=3)
    c.add_argument("--k", type=int, default=10)
    c.add_argument("--server-pid", type=int, default=0)
    c.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    p.add_argument("--work", type=Path, default=Path("/tmp/shoprec-bench"))
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=16_500, help="shoppers (~60 events each)")
    p.add_argument("--ann-items", type=int, default=1_000_000)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument(
        "--setups",
        nargs="*",
        default=["hnsw", "hnsw_2workers", "ann", "ann_2workers", "exact", "exact_2workers"],
        help="exact, hnsw, ann; NAME_2workers: `shoprec serve --workers 2` with Redis online "
        "state; none: build only",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/service_fast.json"))
    p.add_argument("--markdown", type=Path, help="print the tables of this result JSON and exit")
    p.add_argument(
        "--stages",
        choices=("exact", "hnsw", "ann"),
        help="print the CPU cost of each pipeline stage for this (built) artifact and exit",
    )
    p.add_argument(
        "--hnsw-vs-exact",
        action="store_true",
        help="print how much HNSW changes the lists of the (built) 100k artifacts and exit",
    )
    p.add_argument(
        "--add-neighbours",
        nargs="+",
        choices=("exact", "hnsw", "ann"),
        help="give these built artifacts per-item neighbour lists (--neighbours) and exit",
    )
    p.add_argument("--neighbours", type=int, default=100)
    p.add_argument(
        "--framework",
        choices=("exact", "hnsw", "ann"),
        help="print the in-process CPU of the app's layers for this (built) artifact and exit",
    )
    args = p.parse_args()
    if args.framework:
        meta = json.loads((args.work / "build.json").read_text())
        art = meta[args.framework]["artifact"]
        costs = framework_costs(art, meta["store_url"], meta["users"])
        print("| in process, through ASGI | CPU ms per request |\n|---|---:|")
        print("\n".join(f"| {name} | {ms:.3f} |" for name, ms in costs.items()))
        return None
    if args.add_neighbours:
        meta = json.loads((args.work / "build.json").read_text())
        for key in args.add_neighbours:
            add_neighbours(args.work, meta, key, args.neighbours)
            (args.work / "build.json").write_text(json.dumps(meta))
        return None
    if args.hnsw_vs_exact:
        print(json.dumps(hnsw_vs_exact(json.loads((args.work / "build.json").read_text()))))
        return None
    if args.stages:
        meta = json.loads((args.work / "build.json").read_text())
        costs = stage_costs(meta[args.stages]["artifact"], meta["store_url"], meta["users"])
        print("| stage | CPU ms per request (mean) |\n|---|---:|")
        print("\n".join(f"| {name} | {ms:.3f} |" for name, ms in costs.items()))
        return None
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return None
    if args.cmd == "serve":
        return serve(args)
    if args.cmd == "client":
        return client(args)

    # the artifacts the setups use (all three when only building)
    stages = tuple(dict.fromkeys(s.partition("_")[0] for s in args.setups)) or (
        "exact",
        "hnsw",
        "ann",
    )
    meta = build(args.work, args.items, args.users, args.ann_items, stages)
    users_file = args.work / "users.json"
    users_file.write_text(json.dumps(meta["users"]))
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, no GPU, {platform.python_version()}",
        "command": " ".join(["python", "benchmarks/bench_service.py", *sys.argv[1:]]),
        "build": {k: v for k, v in meta.items() if k != "users"},
        "load_average_1min_before": os.getloadavg()[0],
        "niceness": os.nice(0),
        "setups": {},
    }
    for setup in args.setups:
        port = 18000 + random.randrange(1000)
        log(f"{setup}: starting server (load average {os.getloadavg()[0]:.2f})")
        t = time.perf_counter()
        base_name, _, suffix = setup.partition("_")
        workers = 2 if suffix == "2workers" else 1
        base = meta[base_name]
        proc = start_server(base["artifact"], meta["store_url"], port, args.work, workers)
        startup = time.perf_counter() - t
        load_before = os.getloadavg()[0]
        try:
            log(f"{setup}: server up in {startup:.0f}s; driving load")
            runs = run_client(port, users_file, args.seconds, args.connections, 10, proc.pid)
            if setup == "hnsw":
                floor = run_client(port, users_file, min(args.seconds, 5), [1], 0, proc.pid)[0]
                result["health_floor"] = floor
                log(f"GET /health c=1: p50 {floor['p50_ms']:.2f} p99 {floor['p99_ms']:.2f} ms")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        result["setups"][setup] = {
            **base,
            "workers": workers,
            "startup_s": startup,
            "runs": runs,
            "load_average_1min_before": load_before,
            "load_average_1min_after": os.getloadavg()[0],
        }
        for r in runs:
            log(
                f"{setup} c={r['connections']}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} "
                f"p95 {r['p95_ms']:.2f} p99 {r['p99_ms']:.2f} ms, errors {r['errors']}, "
                f"server CPU {r['server_cpu_ms_per_request']:.2f} ms/req, client CPU "
                f"{r['client_cpu_ms_per_request']:.2f} ms/req"
            )
    if not args.setups:
        log("built; no setups to measure")
        return
    result["references"] = (
        scan_references(args.work, meta["exact"]["items"], meta["ann"]["artifact"])
        if "exact" in meta and "ann" in meta
        else {}
    )
    for setup in ("exact", "hnsw", "ann"):
        if setup in args.setups:
            result["references"][f"pipeline_{setup}"] = pipeline_in_process(
                meta[setup]["artifact"], meta["store_url"], meta["users"]
            )
    log(f"references: {result['references']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
