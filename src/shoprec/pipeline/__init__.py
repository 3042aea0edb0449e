"""Retrievers, rankers, re-rankers and explanations: the serve-time recommendation chain.

Public names: `Pipeline`, `RecRequest`, `Recommendation`, `HistoryEvent`, `Campaign`,
`PipelineConfig`, `load_artifact`, `save_artifact`, `build_pipeline`, `train_pipeline`,
`train_artifact`, `ArtifactError`. Heavier modules load on first use.
"""

from __future__ import annotations

from typing import Any

from shoprec.pipeline.config import PipelineConfig
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.request import HistoryEvent, Query, Recommendation, RecRequest
from shoprec.pipeline.rerankers import Campaign
from shoprec.storage.artifacts import ArtifactError

_LAZY = {
    "load_artifact": "shoprec.pipeline.persist",
    "save_artifact": "shoprec.pipeline.persist",
    "build_pipeline": "shoprec.pipeline.build",
    "train_pipeline": "shoprec.pipeline.build",
    "train_artifact": "shoprec.pipeline.build",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shoprec.pipeline' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "Campaign",
    "HistoryEvent",
    "Pipeline",
    "PipelineConfig",
    "Query",
    "RecRequest",
    "Recommendation",
    *_LAZY,
]
