"""Online state: each user's latest events, read by the pipeline on every request.

A click appended here changes the next recommendation without retraining. Each user keeps at
most `max_events` events (the latest arrivals); `recent` returns them ordered by timestamp.
Open with `shoprec.storage.open_online_state("memory://")` or `("redis://127.0.0.1:6379/0")`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import orjson

from shoprec.types import Event


def _order(events: list[Event], n: int) -> list[Event]:
    # Stable sort: events with equal timestamps keep their arrival order.
    if n <= 0:
        return []
    return sorted(events, key=lambda e: e.timestamp)[-n:]


class OnlineState(ABC):
    """Per-user capped lists of recent events."""

    max_events: int

    @abstractmethod
    def append(self, user_id: str, events: Sequence[Event]) -> None:
        """Add events to the user's list, dropping the oldest arrivals beyond `max_events`."""

    @abstractmethod
    def recent(self, user_id: str, n: int = 50) -> list[Event]:
        """Up to `n` of the user's latest events, oldest first ([] for an unknown user)."""

    @abstractmethod
    def forget(self, user_id: str) -> None:
        """Remove everything held about the user (erasure)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every user's state held under this instance's namespace (tests)."""

    def close(self) -> None:
        """Release connections. Idempotent."""
        return None

    def __enter__(self) -> OnlineState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemoryOnlineState(OnlineState):
    """In-process online state, thread-safe, bounded per user and in the number of users.

    Parameters
    ----------
    max_events : int
        Events kept per user.
    max_users : int
        Users kept; the least recently appended-to user is dropped beyond this.
    """

    def __init__(self, max_events: int = 200, max_users: int = 100_000) -> None:
        if max_events < 1 or max_users < 1:
            raise ValueError("max_events and max_users must be at least 1")
        self.max_events = max_events
        self.max_users = max_users
        self._lists: OrderedDict[str, deque[Event]] = OrderedDict()
        self._lock = threading.Lock()

    def append(self, user_id: str, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            q = self._lists.get(user_id)
            if q is None:
                q = self._lists[user_id] = deque(maxlen=self.max_events)
            else:
                self._lists.move_to_end(user_id)
            q.extend(events)
            while len(self._lists) > self.max_users:
                self._lists.popitem(last=False)

    def recent(self, user_id: str, n: int = 50) -> list[Event]:
        with self._lock:
            q = self._lists.get(user_id)
            events = list(q) if q is not None else []
        return _order(events, n)

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._lists.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()

    def __repr__(self) -> str:
        return f"MemoryOnlineState(max_events={self.max_events}, max_users={self.max_users})"


def _encode(e: Event) -> bytes:
    return orjson.dumps(
        [e.item_id, e.event_type, e.timestamp, e.value, e.session_id, e.event_id, e.context],
        default=str,
    )


def _decode(user_id: str, raw: bytes) -> Event:
    item_id, event_type, ts, value, session_id, event_id, context = orjson.loads(raw)
    return Event(user_id, item_id, event_type, float(ts), value, session_id, context, event_id)


class RedisOnlineState(OnlineState):
    """Online state in Redis: one list per user (`RPUSH` then `LTRIM` to the cap).

    Parameters
    ----------
    url : str
        `redis://host:port/db`.
    prefix : str
        Key prefix; every key this instance writes or clears starts with it.
    max_events : int
        Events kept per user.
    ttl_s : int
        Expire a user's list this long after its last append (0: never).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "shoprec:recent:",
        max_events: int = 200,
        ttl_s: int = 0,
    ) -> None:
        import redis

        if not prefix:
            raise ValueError("a Redis online state needs a non-empty key prefix")
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.url = url
        self.prefix = prefix
        self.max_events = max_events
        self.ttl_s = ttl_s
        self._client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise ValueError(f"cannot reach Redis at {url!r}: {exc}") from exc

    def _key(self, user_id: str) -> str:
        return self.prefix + user_id

    def append(self, user_id: str, events: Sequence[Event]) -> None:
        if not events:
            return
        key = self._key(user_id)
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(key, *[_encode(e) for e in events])
        pipe.ltrim(key, -self.max_events, -1)
        if self.ttl_s > 0:
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def recent(self, user_id: str, n: int = 50) -> list[Event]:
        if n <= 0:
            return []
        raw = self._client.lrange(self._key(user_id), 0, -1)
        return _order([_decode(user_id, r) for r in raw], n)

    def forget(self, user_id: str) -> None:
        self._client.delete(self._key(user_id))

    def clear(self) -> None:
        # SCAN, never KEYS: it does not block a shared server. Only keys under our prefix.
        pattern = _glob_escape(self.prefix) + "*"
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __repr__(self) -> str:
        return (
            f"RedisOnlineState({self.url!r}, prefix={self.prefix!r}, max_events={self.max_events})"
        )


def _glob_escape(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)
