"""Artifact folders: atomic versions, the latest pointer, format version and corruption checks."""

from __future__ import annotations

import json

import pytest

from shoprec.storage.artifacts import (
    FORMAT_VERSION,
    ArtifactError,
    list_versions,
    read_manifest,
    record_erasure,
    resolve,
    set_latest_version,
    write_artifact,
)


def _payload(text: str):
    def write(folder):
        (folder / "sub").mkdir()
        (folder / "sub" / "weights.bin").write_text(text)

    return write


def test_write_then_read(tmp_path):
    path = write_artifact(tmp_path, _payload("w1"), {"models": {"m": {"a": 1}}, "fingerprint": "f"})
    folder, manifest = read_manifest(tmp_path)
    assert folder == path
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["files"].keys() == {"sub/weights.bin"}
    assert manifest["models"] == {"m": {"a": 1}} and manifest["erasures"] == []
    assert manifest["created_at"] > 0 and manifest["version"] == path.name


def test_latest_moves_and_old_version_stays_readable(tmp_path):
    first = write_artifact(tmp_path, _payload("w1"), {})
    second = write_artifact(tmp_path, _payload("w2"), {})
    assert resolve(tmp_path) == second
    assert list_versions(tmp_path) == sorted([first.name, second.name])
    set_latest_version(tmp_path, first.name)
    assert resolve(tmp_path) == first
    third = write_artifact(tmp_path, _payload("w3"), {}, set_latest=False)
    assert resolve(tmp_path) == first and third.exists()


def test_other_format_version_is_refused(tmp_path):
    path = write_artifact(tmp_path, _payload("w"), {})
    m = json.loads((path / "manifest.json").read_text())
    m["format_version"] = FORMAT_VERSION + 1
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="format version"):
        read_manifest(path)


def test_corrupt_missing_and_incomplete_are_refused(tmp_path):
    path = write_artifact(tmp_path, _payload("w"), {})
    (path / "sub" / "weights.bin").write_text("tampered")
    with pytest.raises(ArtifactError, match="checksum"):
        read_manifest(path)
    (path / "sub" / "weights.bin").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        read_manifest(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        read_manifest(path)
    m = {"format_version": FORMAT_VERSION, "files": {}}
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="incomplete manifest"):
        read_manifest(path)
    with pytest.raises(ArtifactError, match="does not exist"):
        resolve(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="not an artifact"):
        resolve(tmp_path / "empty")


def test_failed_write_leaves_nothing_behind(tmp_path):
    def boom(folder):
        (folder / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path, boom, {})
    assert list(tmp_path.iterdir()) == []


def test_bad_latest_pointer(tmp_path):
    (tmp_path / "latest").write_text("../elsewhere\n")
    with pytest.raises(ArtifactError, match="invalid latest"):
        resolve(tmp_path)


def test_record_erasure_keeps_artifact_valid(tmp_path):
    path = write_artifact(tmp_path, _payload("w"), {})
    record_erasure(path, {"user": "pseudo-1", "at": 1.0})
    _, m = read_manifest(path)
    assert m["erasures"] == [{"user": "pseudo-1", "at": 1.0}]
