"""The explicit model registry: name -> "module:Class", imported lazily.

Listing models never imports torch. Users add their own with `register()`.
"""

from __future__ import annotations

import importlib
from typing import Any

_REGISTRY: dict[str, str] = {
    # Entries are added as model files land; keep this list sorted by family.
    "popularity": "shoprec.models.popularity:Popularity",
    "trending": "shoprec.models.popularity:Trending",
    "itemknn": "shoprec.models.itemknn:ItemKNN",
    "itemknn_seq": "shoprec.models.itemknn:SequentialItemKNN",
    "ease": "shoprec.models.ease:EASE",
    "content": "shoprec.models.content:ContentKNN",
    "hybrid": "shoprec.models.hybrid:HybridMF",
    "als": "shoprec.models.als:ALS",
    "bpr": "shoprec.models.bpr:BPR",
    "seqrules": "shoprec.models.sequential_rules:SequentialRules",
    "attrknn": "shoprec.models.attribute_knn:AttributeKNN",
    "two_tower": "shoprec.models.two_tower:TwoTower",
    "gru4rec": "shoprec.models.gru4rec:GRU4Rec",
    "sasrec": "shoprec.models.sasrec:SASRec",
    "private_seq": "shoprec.models.private_seq:PrivateSeq",
    "blend": "shoprec.models.ensemble:Blend",
    "stacked": "shoprec.models.stacked:Stacked",
    "best": "shoprec.models.stacked:Best",
}


def register(name: str, target: str) -> None:
    """Register `target` ("package.module:Class") under `name`."""
    if ":" not in target:
        raise ValueError(f"register: target must look like 'module:Class', got {target!r}")
    _REGISTRY[name] = target


def available() -> list[str]:
    """Registered model names, without importing any model."""
    return sorted(_REGISTRY)


def model_class(name: str) -> type:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, **params: Any):
    """A new, unfitted model by registry name."""
    return model_class(name)(**params)
