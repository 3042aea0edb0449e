"""Bulk ingest speed into each store: pure store inserts, validation alone, and end to end.

N synthetic raw events (strings, as a CSV reader hands them over) come from a seeded RNG:
Zipf-distributed items (a long tail), users with sessions, a funnel of event types, 1 % exact
duplicate rows and 0.2 % invalid rows. For each backend and each of `--runs` fresh stores:

- store: `Store.add_events` over pre-validated `Event`s in batches (what the store costs);
- end to end: `ingest()` over the raw dicts (validation + dedup + store, rejects counted);
- validation alone: `parse_event` over the raw dicts (what validation costs).

Figures are medians over runs; peak memory of one end-to-end run is measured separately with
tracemalloc (allocations made by the ingest itself, the input list excluded), plus the
process's max RSS. Writes JSON to benchmarks/results/ingest.json.

    .venv/bin/python benchmarks/bench_ingest.py --n 500000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.data.schema import parse_event
from shoprec.storage import open_store
from shoprec.storage.base import Store
from shoprec.storage.ingest import ingest
from shoprec.types import Event, RecordError

TYPES = np.array(["view", "click", "add_to_cart", "purchase", "wishlist", "remove_from_cart"])
TYPE_P = np.array([0.70, 0.15, 0.08, 0.04, 0.02, 0.01])


def make_raw_events(n: int, seed: int) -> list[dict[str, str]]:
    """N raw event dicts with string values; 1 % are repeats of an earlier row, 0.2 % invalid."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(10, n // 20), max(10, n // 50)
    users = rng.integers(0, n_users, n)
    items = np.minimum(rng.zipf(1.3, n), n_items) - 1
    items = (items * 7919) % n_items  # spread the popular ids over the id space
    types = rng.choice(TYPES, n, p=TYPE_P)
    ts = 1_700_000_000 + np.cumsum(rng.exponential(0.5, n))
    sessions = users * 100 + (ts // 1800).astype(np.int64) % 100
    has_id = rng.random(n) < 0.3
    raws: list[dict[str, str]] = []
    for k in range(n):
        r = {
            "user_id": f"u{users[k]}",
            "item_id": f"i{items[k]}",
            "event_type": str(types[k]),
            "timestamp": f"{ts[k]:.3f}",
            "value": "",
            "session_id": f"s{sessions[k]}",
            "event_id": f"e{k}" if has_id[k] else "",
        }
        if types[k] == "purchase":
            r["value"] = f"{rng.integers(1, 500)}.99"
        raws.append(r)
    dup = rng.choice(n, n // 100, replace=False)
    src = rng.integers(0, n, dup.size)
    for d, s in zip(dup, src, strict=True):
        raws[d] = dict(raws[s])
    bad = rng.choice(n, n // 500, replace=False)
    for b in bad:
        raws[b] = dict(raws[b], event_type="teleport") if b % 2 else dict(raws[b], timestamp="soon")
    return raws


def open_fresh(backend: str, tmp: Path, pg_url: str) -> tuple[Store, str | None]:
    if backend == "sqlite":
        path = tmp / f"{uuid.uuid4().hex}.db"
        return open_store(f"sqlite:///{path}"), None
    schema = f"bench_ingest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    return open_store(f"{pg_url}?schema={schema}"), schema


def dispose(store: Store, backend: str) -> None:
    if backend == "postgresql":
        store.drop_schema()  # type: ignore[attr-defined]
    else:
        store.close()


def server_cpu(store: Store) -> float:
    """CPU seconds used so far by the PostgreSQL backend serving `store` (0 for SQLite).

    The server runs on this machine, so its process can be read from /proc; this lets the
    benchmark report CPU cost next to wall time on a shared, busy machine.
    """
    conn = getattr(store, "_conn", None)
    if conn is None or not hasattr(conn, "pgconn"):
        return 0.0
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn: Any, store: Store) -> tuple[Any, float, float, float]:
    """(result, wall s, client CPU s, server CPU s) of `fn()`."""
    s0 = server_cpu(store)
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return out, wall, cpu, server_cpu(store) - s0


def bench_backend(
    backend: str,
    raws: list[dict[str, str]],
    events: list[Event],
    n_unique: int,
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    records = [("bench", k + 1, r) for k, r in enumerate(raws)]
    store_rates, e2e_rates = [], []
    cpu_store: list[tuple[float, float]] = []
    cpu_e2e: list[tuple[float, float]] = []
    for run in range(args.runs):
        store, _ = open_fresh(backend, tmp, args.pg_url)

        def add_all(store: Store = store) -> int:
            inserted = 0
            for i in range(0, len(events), args.batch_size):
                inserted += store.add_events(events[i : i + args.batch_size]).inserted
            return inserted

        inserted, wall, cpu, srv = timed(add_all, store)
        if inserted != n_unique:
            raise RuntimeError(f"{backend}: stored {inserted}, expected {n_unique}")
        store_rates.append(len(events) / wall)
        cpu_store.append((cpu, srv))
        dispose(store, backend)

        store, _ = open_fresh(backend, tmp, args.pg_url)
        report, wall, cpu, srv = timed(
            lambda store=store: ingest(records, store, batch_size=args.batch_size), store
        )
        if (
            report.accepted != n_unique
            or report.rows != len(raws)
            or store.count_events() != n_unique
        ):
            raise RuntimeError(f"{backend}: end-to-end report {report.as_dict()} is wrong")
        e2e_rates.append(len(raws) / wall)
        cpu_e2e.append((cpu, srv))
        dispose(store, backend)
        print(
            f"  {backend} run {run + 1}: store {store_rates[-1]:,.0f} ev/s, "
            f"end-to-end {e2e_rates[-1]:,.0f} rows/s",
            flush=True,
        )

    store, _ = open_fresh(backend, tmp, args.pg_url)
    tracemalloc.start()
    report = ingest(records, store, batch_size=args.batch_size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dispose(store, backend)
    return {
        "store_events_per_s_median": statistics.median(store_rates),
        "store_events_per_s_runs": store_rates,
        # Load-independent view: events per CPU-second, client and server CPU added up.
        "store_events_per_cpu_s_median": statistics.median(
            len(events) / (c + sv) for c, sv in cpu_store
        ),
        "store_client_cpu_s_median": statistics.median(c for c, _ in cpu_store),
        "store_server_cpu_s_median": statistics.median(s for _, s in cpu_store),
        "end_to_end_rows_per_s_median": statistics.median(e2e_rates),
        "end_to_end_rows_per_s_runs": e2e_rates,
        "end_to_end_rows_per_cpu_s_median": statistics.median(
            len(raws) / (c + sv) for c, sv in cpu_e2e
        ),
        "end_to_end_client_cpu_s_median": statistics.median(c for c, _ in cpu_e2e),
        "end_to_end_server_cpu_s_median": statistics.median(s for _, s in cpu_e2e),
        "end_to_end_report": report.as_dict(),
        "ingest_peak_traced_mib": peak / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg-url", default="postgresql://127.0.0.1:5432/test")
    ap.add_argument("--out", default="benchmarks/results/ingest.json")
    args = ap.parse_args()

    t0 = time.perf_counter()
    raws = make_raw_events(args.n, args.seed)
    print(f"generated {len(raws):,} raw events in {time.perf_counter() - t0:.1f} s", flush=True)
    parse_rates, parse_cpu_rates, events, n_bad = [], [], [], 0
    for _ in range(args.runs):
        events, n_bad = [], 0
        w, c = time.perf_counter(), time.process_time()
        for k, r in enumerate(raws):
            try:
                events.append(parse_event(r, "bench", k + 1))
            except RecordError:
                n_bad += 1
        parse_rates.append(len(raws) / (time.perf_counter() - w))
        parse_cpu_rates.append(len(raws) / (time.process_time() - c))
    n_unique = len({e.dedup_key() for e in events})
    print(
        f"validation alone: {statistics.median(parse_rates):,.0f} rows/s; "
        f"{n_bad} invalid, {len(events) - n_unique} duplicates",
        flush=True,
    )

    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        for backend in args.backends.split(","):
            results[backend] = bench_backend(backend, raws, events, n_unique, args, Path(tmp))
    out = {
        "n_rows": len(raws),
        "n_invalid": n_bad,
        "n_duplicates": len(events) - n_unique,
        "n_stored": n_unique,
        "runs": args.runs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "validation_rows_per_s_median": statistics.median(parse_rates),
        "validation_rows_per_cpu_s_median": statistics.median(parse_cpu_rates),
        "backends": results,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "backends"}, indent=2))
    for b, r in results.items():
        print(
            f"{b:10s} store {r['store_events_per_s_median']:>9,.0f} ev/s "
            f"(CPU s client {r['store_client_cpu_s_median']:.1f}, server "
            f"{r['store_server_cpu_s_median']:.1f})  end-to-end "
            f"{r['end_to_end_rows_per_s_median']:>9,.0f} rows/s (CPU s client "
            f"{r['end_to_end_client_cpu_s_median']:.1f}, server "
            f"{r['end_to_end_server_cpu_s_median']:.1f})  ingest peak "
            f"{r['ingest_peak_traced_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
