"""The artifact being served, swapped atomically: load in the background, then swap one reference.

`ModelHolder.current` is a single attribute holding an immutable `Served`; each request reads it
once and keeps using that object, so a swap never changes a model under a running request and
never makes one fail. A new artifact is loaded and smoke-tested (a cold-start request must
succeed) before the swap; one that fails to load or to answer is refused, logged, counted, and
the old one keeps serving. A daemon thread watches the artifacts root's ``latest`` pointer.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprec.serving.periodic import Periodic
from shoprec.storage.artifacts import ArtifactError, resolve
from shoprec.types import Item

log = logging.getLogger("shoprec.serving.runtime")


class NotReady(RuntimeError):
    """No artifact has been loaded yet."""


@dataclass(frozen=True, eq=False)
class Served:
    """One loaded artifact: its pipeline, version, folder and recipe digest."""

    pipeline: Any
    version: str
    path: str
    recipe: str
    loaded_at: float


def resolve_artifact(root: str | Path) -> Path:
    """The version folder `root` designates (itself, or what its ``latest`` pointer names)."""
    return resolve(root).resolve()


def load_served(path: Path, smoke: Callable[[Any], None]) -> Served:
    """Load the artifact at `path` and smoke-test its pipeline; `ArtifactError` on any failure."""
    from shoprec.pipeline.persist import load_artifact

    start = time.perf_counter()
    try:
        pipeline = load_artifact(path)
        smoke(pipeline)
    except Exception as exc:  # any failure means "refuse this artifact", whatever its kind
        raise ArtifactError(
            f"cannot serve artifact {path.name}: {type(exc).__name__}: {exc}"
        ) from exc
    version = str(getattr(pipeline, "version", None) or path.name)
    log.info("loaded artifact %s in %.2fs", version, time.perf_counter() - start)
    return Served(pipeline, version, str(path), recipe_of(pipeline), time.time())


def recipe_of(pipeline: Any) -> str:
    """A digest of the pipeline's recipe (its configuration and sources), for cache keys."""
    src = repr((getattr(pipeline, "config", None), getattr(pipeline, "sources", None)))
    return hashlib.blake2b(src.encode(), digest_size=8).hexdigest()


class ModelHolder:
    """Holds the served artifact, swaps it atomically, and re-applies catalog changes.

    Parameters
    ----------
    root : str
        The artifacts root (see `resolve_artifact`).
    smoke : callable
        Called with a freshly loaded pipeline; must raise if it cannot serve.
    on_swap : callable, optional
        Called with the new `Served` after each swap (metrics, cache clearing).
    on_refused : callable, optional
        Called with the error after an artifact is refused.
    """

    def __init__(
        self,
        root: str,
        smoke: Callable[[Any], None],
        on_swap: Callable[[Served], None] | None = None,
        on_refused: Callable[[Exception], None] | None = None,
    ) -> None:
        self.root = root
        self.smoke = smoke
        self.on_swap = on_swap
        self.on_refused = on_refused
        self.current: Served | None = None
        self._load_lock = threading.Lock()  # serialises loads (watcher and reload route)
        self._swap_lock = threading.RLock()  # serialises swaps and catalog updates
        self._catalog: dict[str, Item] = {}  # catalog changes made through the API since start
        self._forgotten: set[str] = set()  # users erased since start (their trained history)
        self._failed: str | None = None
        self._watcher: Periodic | None = None

    # ---------------------------------------------------------------- reading
    def get(self) -> Served:
        served = self.current
        if served is None:
            raise NotReady("no artifact loaded")
        return served

    # ---------------------------------------------------------------- loading
    def reload(self, version: str | None = None) -> tuple[Served, bool]:
        """Load the pointed-to artifact (or `version` under the root) and swap it in.

        Returns the served artifact and whether it changed. Raises `ArtifactError` when the
        target cannot be served; the current one then stays.
        """
        with self._load_lock:  # one load at a time: a slow old load never overtakes a newer one
            target = self._target(version)
            current = self.current
            if current is not None and current.path == str(target):
                return current, False
            try:
                served = load_served(target, self.smoke)
            except ArtifactError as exc:
                self._failed = str(target)
                log.error("%s; keeping %s", exc, current.version if current else "nothing")
                if self.on_refused is not None:
                    self.on_refused(exc)
                raise
            self._swap(served)
            return served, True

    def _target(self, version: str | None) -> Path:
        if not self.root:
            raise ArtifactError("no artifacts root is configured")
        if version is None:
            try:
                return resolve_artifact(self.root)
            except OSError as exc:
                raise ArtifactError(f"cannot resolve the artifacts root: {exc}") from exc
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise ArtifactError("version must be a folder name under the artifacts root")
        target = (Path(self.root) / version).resolve()
        if not target.is_dir():
            raise ArtifactError(f"no artifact version {version!r}")
        return target

    def serve(self, pipeline: Any, version: str | None = None) -> Served:
        """Serve an in-memory pipeline (embedding, tests) as if loaded from an artifact."""
        self.smoke(pipeline)
        version = version or str(getattr(pipeline, "version", "in-memory"))
        served = Served(pipeline, version, "", recipe_of(pipeline), time.time())
        self._swap(served)
        return served

    def _swap(self, served: Served) -> None:
        with self._swap_lock:
            if self._catalog:
                served.pipeline.update_items(list(self._catalog.values()))
            for user in self._forgotten:
                served.pipeline.forget_user(user)
            self.current = served  # the one reference every request reads
            self._failed = None
        if self.on_swap is not None:
            self.on_swap(served)

    def update_items(self, items: Sequence[Item]) -> None:
        """Apply catalog changes to the served pipeline and remember them for the next one."""
        with self._swap_lock:
            for it in items:
                self._catalog[it.item_id] = it
            if self.current is not None:
                self.current.pipeline.update_items(list(items))

    def forget_user(self, user: str) -> None:
        """Stop the served pipeline (and the next ones) using the user's trained history."""
        with self._swap_lock:
            self._forgotten.add(user)
            if self.current is not None:
                self.current.pipeline.forget_user(user)

    # ---------------------------------------------------------------- watching
    def check_once(self) -> bool:
        """Swap in the pointed-to artifact if it changed; True when a swap happened."""
        if not self.root:
            return False
        try:
            target = str(resolve_artifact(self.root))
        except (OSError, ArtifactError):
            return False
        current = self.current
        if (current is not None and current.path == target) or target == self._failed:
            return False
        try:
            _, changed = self.reload()
        except ArtifactError:
            return False
        return changed

    def start_watching(self, interval_s: float) -> None:
        if self._watcher is None:
            self._watcher = Periodic(self.check_once, interval_s, "shoprec-artifact-watch", False)
            self._watcher.start()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
