"""A daemon thread that calls a function every so many seconds until stopped (the artifact
watcher, the retention purge). An exception in one call is logged and the next call still
comes: a background job must survive a store or file-system hiccup."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Call `fn` every `interval_s` seconds on a daemon thread named `name`.

    `at_start` also calls it once as soon as the thread starts; `interval_s <= 0` then means
    "once, at start" (and nothing at all without `at_start`).
    """

    def __init__(self, fn: Callable[[], object], interval_s: float, name: str, at_start: bool):
        self.fn = fn
        self.interval_s = float(interval_s)
        self.name = name
        self.at_start = at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _call(self) -> None:
        try:
            self.fn()
        except Exception:  # logged without detail: the message may hold data
            log.exception("%s: iteration failed", self.name)

    def _loop(self) -> None:
        if self.at_start:
            self._call()
        if self.interval_s <= 0:
            return
        while not self._stop.wait(self.interval_s):
            self._call()

    def start(self) -> None:
        if self._thread is not None or (self.interval_s <= 0 and not self.at_start):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
