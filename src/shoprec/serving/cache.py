"""A small LRU cache of recommendation lists that can never bypass a rule.

Keys hold everything a list depends on: the pipeline recipe and model version, the catalog
version (bumped by every catalog change, so stock 0 or a new item invalidates at once), the
user's state version (a digest of the history read on this very request, so a new event, even
one posted to another process, misses the cache), and the request's knobs. Entries expire
after a TTL so that time-based rules (new-item windows, campaigns) stay fresh. Erasure drops
a user's entries explicitly.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from shoprec.types import Event


def state_version(history: Sequence[Event]) -> str:
    """A digest of a user's history as read for this request (any change changes it)."""
    h = hashlib.blake2b(digest_size=12)
    for e in history:
        h.update(e.dedup_key().encode())
        h.update(b"\x1e")
    return h.hexdigest()


class ResultCache:
    """Thread-safe LRU: key -> value, with an index of keys per stored user id."""

    def __init__(
        self, size: int, ttl_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl_s = ttl_s  # 0: entries live until evicted; else time-based rules stay fresh
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._by_user: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> Any | None:
        if self.size <= 0:
            return None
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if self.ttl_s > 0 and self.clock() - entry[0] > self.ttl_s:
                del self._data[key]
                self._unindex(key)
                return None
            self._data.move_to_end(key)
            return entry[1]

    def put(self, user: str, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = (self.clock(), value)
            self._data.move_to_end(key)
            self._by_user.setdefault(user, set()).add(key)
            while len(self._data) > self.size:
                old, _ = self._data.popitem(last=False)
                self._unindex(old)

    def forget_user(self, user: str) -> int:
        """Drop every entry of one user; returns how many."""
        with self._lock:
            keys = self._by_user.pop(user, set())
            for k in keys:
                self._data.pop(k, None)
            return len(keys)

    def forget(self, user_id: str) -> int:
        """Erasure hook (`shoprec.storage.erasure.Forgettable`): same as `forget_user`."""
        return self.forget_user(user_id)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._by_user.clear()

    def _unindex(self, key: Hashable) -> None:
        user = key[0] if isinstance(key, tuple) and key else None
        if isinstance(user, str) and user in self._by_user:
            self._by_user[user].discard(key)
            if not self._by_user[user]:
                del self._by_user[user]
