"""Save a `Pipeline` as a versioned artifact and load it back.

The folder mechanics (atomic write, checksums, format version, `latest`) live in
`shoprec.storage.artifacts`; this module writes the payload::

    pipeline.json            config, retriever list, ranker kind, campaigns
    catalog/arrays.npz       index-aligned catalog arrays; catalog/meta.json ids, titles...
    users.json               user ids (index order); histories.npz trained histories (CSR)
    retrievers/<name>/       each retriever's save() (models through their own save/load)
    ranker/                  the LightGBM booster, when trained
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.config import from_dict
from shoprec.data.idmap import IdMap
from shoprec.pipeline.catalog import CatalogView
from shoprec.pipeline.config import PipelineConfig
from shoprec.pipeline.model_retrievers import ContentRetriever, ModelRetriever
from shoprec.pipeline.pipeline import Pipeline
from shoprec.pipeline.ranker import LightGBMRanker, Ranker, WeightedSumRanker
from shoprec.pipeline.rerankers import Campaign
from shoprec.pipeline.retrievers import ItemToItemRetriever, Retriever, TrendingRetriever
from shoprec.storage.artifacts import ArtifactError, read_manifest, write_artifact

RETRIEVER_KINDS: dict[str, type[Retriever]] = {
    "trending": TrendingRetriever,
    "item_to_item": ItemToItemRetriever,
    "model": ModelRetriever,
    "content": ContentRetriever,
}


def register_retriever_kind(kind: str, cls: type[Retriever]) -> None:
    """Let artifacts hold a retriever class defined elsewhere (saved under `cls.kind`)."""
    RETRIEVER_KINDS[kind] = cls


def config_to_dict(config: PipelineConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def save_artifact(
    pipeline: Pipeline,
    root: str | Path,
    metrics: dict[str, Any] | None = None,
    fingerprint: str = "",
    extra: dict[str, Any] | None = None,
    set_latest: bool = True,
) -> Path:
    """Write `pipeline` as a new version under `root`; returns the version folder."""
    retrievers = list(pipeline.retrievers.values())
    dirs = [f"{i:02d}-{_safe(r.name)}" for i, r in enumerate(retrievers)]

    def payload(tmp: Path) -> None:
        arrays, meta = pipeline.catalog.state()
        (tmp / "catalog").mkdir()
        np.savez(tmp / "catalog" / "arrays.npz", **arrays)
        (tmp / "catalog" / "meta.json").write_text(json.dumps(meta))
        (tmp / "users.json").write_text(json.dumps(pipeline.users.to_list()))
        indptr, items = pipeline.histories
        if pipeline._forgotten:  # erased users leave no trained history behind
            keep = np.ones(len(items), bool)
            for u in pipeline._forgotten:
                ui = pipeline.users.get(u)
                if 0 <= ui < len(indptr) - 1:
                    keep[indptr[ui] : indptr[ui + 1]] = False
            owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            lens = np.bincount(owner[keep], minlength=len(indptr) - 1)
            indptr, items = np.concatenate([[0], np.cumsum(lens)]), items[keep]
        np.savez(tmp / "histories.npz", indptr=indptr, items=items)
        for r, d in zip(retrievers, dirs, strict=True):
            r.save(tmp / "retrievers" / d)
        if isinstance(pipeline.ranker, LightGBMRanker):
            pipeline.ranker.save(tmp / "ranker")
        spec = {
            "config": config_to_dict(pipeline.config),
            "retrievers": [
                {"name": r.name, "kind": r.kind, "dir": d}
                for r, d in zip(retrievers, dirs, strict=True)
            ],
            "ranker": pipeline.ranker.to_dict(),
            "campaigns": [dataclasses.asdict(c) for c in pipeline.promotion.campaigns],
        }
        (tmp / "pipeline.json").write_text(json.dumps(spec, indent=2, default=str))

    models = {}
    for r in retrievers:
        entry: dict[str, Any] = {"kind": r.kind, **r.params()}
        if isinstance(r, ModelRetriever) and r.recommender_ is not None:
            entry["class"] = type(r.recommender_).__module__ + ":" + type(r.recommender_).__name__
        models[r.name] = entry
    models["ranker"] = pipeline.ranker.to_dict()
    manifest = {
        "models": models,
        "config": config_to_dict(pipeline.config),
        "fingerprint": fingerprint,
        "metrics": metrics or {},
        "n_items": len(pipeline.catalog),
        "n_users": len(pipeline.users),
        "sources": pipeline.sources,
        **(extra or {}),
    }
    return write_artifact(root, payload, manifest, set_latest=set_latest)


def load_artifact(path: str | Path, verify: bool = True) -> Pipeline:
    """Load the pipeline in artifact `path` (a version folder, or a root with `latest`).

    Raises
    ------
    ArtifactError
        Another format version, a missing or corrupt file, or a payload that cannot be read.
    """
    import shoprec.pipeline.cold_start  # noqa: F401  registers the cold-start retriever kinds

    folder, manifest = read_manifest(path, verify=verify)
    try:
        spec = json.loads((folder / "pipeline.json").read_text())
        config = from_dict(PipelineConfig, spec["config"], "pipeline")
        with np.load(folder / "catalog" / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads((folder / "catalog" / "meta.json").read_text())
        catalog = CatalogView.from_state(arrays, meta)
        users = IdMap.from_list(json.loads((folder / "users.json").read_text()))
        with np.load(folder / "histories.npz", allow_pickle=False) as z:
            histories = (z["indptr"], z["items"])
        retrievers = []
        for r in spec["retrievers"]:
            cls = RETRIEVER_KINDS.get(r["kind"])
            if cls is None:
                raise ArtifactError(
                    f"{folder}: unknown retriever kind {r['kind']!r}; "
                    "register it with register_retriever_kind"
                )
            retrievers.append(cls.load(folder / "retrievers" / r["dir"]))
        ranker: Ranker
        if spec["ranker"]["kind"] == "lightgbm":
            ranker = LightGBMRanker.load(folder / "ranker", catalog)
        else:
            ranker = WeightedSumRanker(spec["ranker"].get("weights"))
        campaigns = [Campaign(**c) for c in spec.get("campaigns", [])]
    except ArtifactError:
        raise
    except Exception as exc:  # any unreadable payload is refused the same way
        raise ArtifactError(f"{folder}: cannot load pipeline: {type(exc).__name__}: {exc}") from exc
    info = {
        k: manifest[k]
        for k in ("version", "created_at", "fingerprint", "metrics", "erasures", "format_version")
    }
    info["path"] = str(folder)
    pipeline = Pipeline(catalog, retrievers, ranker, config, users, histories, campaigns, info)
    # posted items get content vectors at once, as in the pipeline that was saved
    from shoprec.pipeline.cold_start import install_content_hook, share_vector_index

    install_content_hook(pipeline)
    share_vector_index(pipeline)
    return pipeline
