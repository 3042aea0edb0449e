"""A tiny shop with known answers, and a real `Pipeline` built on it, for the service tests.

- 30 items: ``i00``..``i14`` in "Home > Kitchen", ``i15``..``i29`` in "Books > Fiction";
  price = 10 + number; everything in stock.
- 40 shoppers ``u00``..``u39``. Each views three "pairs" in order: the even item ``i2j`` and
  right after it ``i2j+1`` (so "often viewed after i00" is ``i01``), then ``i10`` (trending).
- Known answers: after a view of ``i00`` a shopper's top item is ``i01``; setting ``i01``'s
  stock to 0 removes it from every list; a shopper nobody knows gets the cold-start list.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData
from shoprec.pipeline import Pipeline, PipelineConfig
from shoprec.pipeline.build import build_pipeline
from shoprec.pipeline.persist import load_artifact, save_artifact
from shoprec.storage.base import Store
from shoprec.types import Event, Item

T0 = 1_767_225_600.0  # 2026-01-01
N_ITEMS = 30
N_USERS = 40


def item_id(i: int) -> str:
    return f"i{i:02d}"


def items_frame() -> pd.DataFrame:
    rows = []
    for i in range(N_ITEMS):
        rows.append(
            {
                "item_id": item_id(i),
                "title": f"{'Kettle' if i < 15 else 'Novel'} {i}",
                "category": "Home > Kitchen" if i < 15 else "Books > Fiction",
                "price": 10.0 + i,
                "stock": 5,
                "active": True,
                "created_at": T0 - 100 * 86400.0,
            }
        )
    return pd.DataFrame(rows)


def events_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        t = T0 + u * 3600.0
        firsts = rng.choice(np.arange(0, N_ITEMS - 1, 2), size=3, replace=False)
        if u < N_USERS // 2:
            firsts[0] = 0  # half the shoppers go i00 -> i01
        for a in firsts:
            for it in (a, a + 1):
                rows.append((f"u{u:02d}", item_id(int(it)), "view", t))
                t += 60.0
        rows.append((f"u{u:02d}", item_id(10), "view", t))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])


def shop_data(seed: int = 0) -> InteractionData:
    return InteractionData.from_frame(events_frame(seed).assign(weight=1.0), items_frame())


def pipeline_config(**config: object) -> PipelineConfig:
    """Weighted ranker, no exploration slot: deterministic lists for exact assertions."""
    # the known answers below come from item-to-item and trending alone
    config.setdefault("content", False)
    config.setdefault("onboarding", False)
    return PipelineConfig(ranker="weighted", exploration_slots=0, **config)  # type: ignore[arg-type]


def save_shop_artifact(root: Path, seed: int = 0, **config: object) -> Path:
    """Train the shop's pipeline and write it as a new artifact version under `root`."""
    return save_artifact(build_pipeline(shop_data(seed), pipeline_config(**config)), root)


def load_shop_pipeline(seed: int = 0, **config: object) -> Pipeline:
    """The shop's pipeline as the service gets it: written to an artifact and loaded back."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_artifact(save_shop_artifact(Path(tmp), seed, **config))


def fill_store(store: Store, seed: int = 0) -> None:
    """The shop's catalog and events, as the service's store holds them."""
    store.upsert_items([Item(**r) for r in items_frame().to_dict("records")])
    store.add_events(
        [
            Event(r.user_id, r.item_id, r.event_type, float(r.timestamp))
            for r in events_frame(seed).itertuples()
        ]
    )
