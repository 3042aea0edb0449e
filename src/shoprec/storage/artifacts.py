"""Versioned, self-describing artifact folders: where training hands models to serving.

Layout of an artifact root::

    root/
      latest                      # text file: name of the current version (hot-swap pointer)
      20261129T101500Z-1a2b3c4d/  # one version
        manifest.json             # format version, creation time, models and params,
                                  # config, data fingerprint, metrics, erasures, checksums
        ...payload files...

A version is written into a temporary folder inside the root and renamed into place, so a
reader never sees half an artifact; `latest` is replaced atomically. Reading checks the format
version, that every listed file exists and that its SHA-256 matches, and raises
`ArtifactError` with a clear message otherwise. This module knows nothing of models or
pipelines: `shoprec.pipeline.persist` writes and reads the payload.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "latest"
REQUIRED_KEYS = (
    "format_version",
    "created_at",
    "version",
    "files",
    "models",
    "config",
    "fingerprint",
    "metrics",
    "erasures",
)


class ArtifactError(RuntimeError):
    """An artifact folder that cannot be used (wrong format version, missing or corrupt)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_artifact(
    root: str | Path,
    write_payload: Callable[[Path], None],
    manifest: dict[str, Any],
    set_latest: bool = True,
) -> Path:
    """Write one artifact version atomically and (by default) point `latest` at it.

    Parameters
    ----------
    root : path
        Artifact root (created when missing).
    write_payload : callable
        Writes the payload files into the folder it is given.
    manifest : dict
        Self-description: `models`, `config`, `fingerprint`, `metrics` and anything else;
        `format_version`, `created_at`, `version`, `files` and `erasures` are filled in.

    Returns
    -------
    Path of the new version folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    created = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created))
    version = f"{stamp}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    try:
        write_payload(tmp)
        files = {
            p.relative_to(tmp).as_posix(): _sha256(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        }
        full = {
            "models": {},
            "config": {},
            "fingerprint": "",
            "metrics": {},
            "erasures": [],
            **manifest,
            "format_version": FORMAT_VERSION,
            "created_at": created,
            "created_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "version": version,
            "files": files,
        }
        with open(tmp / MANIFEST, "w") as f:
            json.dump(full, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        final = root / version
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if set_latest:
        set_latest_version(root, version)
    return final


def set_latest_version(root: str | Path, version: str) -> None:
    """Point `root/latest` at `version` atomically (after checking it is readable)."""
    root = Path(root)
    read_manifest(root / version)
    tmp = root / f".latest-{uuid.uuid4().hex[:8]}"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / LATEST)
    _fsync_dir(root)


def resolve(path: str | Path) -> Path:
    """The version folder `path` names: itself if it holds a manifest, else its `latest`."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    pointer = path / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if not name or "/" in name or name.startswith("."):
            raise ArtifactError(f"{pointer}: invalid latest pointer {name!r}")
        target = path / name
        if not (target / MANIFEST).is_file():
            raise ArtifactError(f"{pointer} points to {name!r}, which has no {MANIFEST}")
        return target
    if not path.exists():
        raise ArtifactError(f"artifact {path} does not exist")
    raise ArtifactError(f"{path} is not an artifact: no {MANIFEST} and no {LATEST} pointer")


def read_manifest(path: str | Path, verify: bool = True) -> tuple[Path, dict[str, Any]]:
    """Find, parse and check an artifact; returns (version folder, manifest).

    Raises
    ------
    ArtifactError
        Not an artifact, unreadable manifest, another format version, missing keys, or a
        payload file that is missing or whose checksum differs (when `verify`).
    """
    folder = resolve(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder}: unreadable {MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{folder}: {MANIFEST} is not an object")
    fv = manifest.get("format_version")
    if fv != FORMAT_VERSION:
        raise ArtifactError(
            f"{folder}: artifact format version {fv!r}, this shoprec reads version "
            f"{FORMAT_VERSION}; retrain with `shoprec train` or use a matching shoprec"
        )
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ArtifactError(f"{folder}: incomplete manifest, missing {', '.join(missing)}")
    if verify:
        for rel, digest in manifest["files"].items():
            p = folder / rel
            if not p.is_file():
                raise ArtifactError(f"{folder}: incomplete artifact, {rel} is missing")
            if _sha256(p) != digest:
                raise ArtifactError(f"{folder}: corrupt artifact, checksum of {rel} differs")
    return folder, manifest


def list_versions(root: str | Path) -> list[str]:
    """Complete versions under `root`, oldest first (temporary folders are skipped)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    )


def record_erasure(path: str | Path, entry: dict[str, Any]) -> None:
    """Append an honoured erasure to a version's manifest (atomic replace).

    The manifest is not among the checksummed files, so this keeps the artifact valid.
    """
    folder, manifest = read_manifest(path, verify=False)
    manifest["erasures"] = [*manifest.get("erasures", []), entry]
    tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, folder / MANIFEST)
