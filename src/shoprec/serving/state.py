"""What the routes share: stores, online state, the served model, the cache, and the id seam.

Routes stay thin: they validate, call one method here, and shape the response. The methods
work on *stored* user ids (see `shoprec.serving.identity`), never on raw ones.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoprec.pipeline.request import HistoryEvent, Recommendation, RecRequest
from shoprec.serving.auth import AccessControl
from shoprec.serving.cache import ResultCache, state_version
from shoprec.serving.identity import UserIds
from shoprec.serving.metrics import Metrics
from shoprec.serving.runtime import ModelHolder, Served
from shoprec.serving.settings import ServingSettings
from shoprec.storage.base import AddResult, Store
from shoprec.storage.erasure import ErasureLog, forget_user
from shoprec.storage.online_state import OnlineState
from shoprec.types import Event, Item

log = logging.getLogger("shoprec.serving")


@dataclass(frozen=True)
class RecQuery:
    """The knobs of one recommendation request (after validation)."""

    k: int
    diversity: float | None = None
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None


class ServiceState:
    """Everything a request needs, built in the app's lifespan and closed at shutdown."""

    def __init__(
        self,
        settings: ServingSettings,
        store: Store,
        online: OnlineState,
        models: ModelHolder,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.online = online
        self.models = models
        self.metrics = metrics
        self.access = AccessControl(settings)
        self.user_ids = UserIds(settings)
        self.cache = ResultCache(settings.cache_size, settings.cache_ttl_s)
        self._compute = threading.Lock()
        self.catalog_version = 0

    # ------------------------------------------------------------------ history
    def history(self, user: str) -> list[Event]:
        """The user's stored events and online state merged, oldest first, at most
        ``history_limit`` (read on every request, so a posted event counts at once)."""
        limit = self.settings.history_limit
        return self._merged(user, self.online.recent(user, limit))

    def _merged(self, user: str, recent: list[Event]) -> list[Event]:
        """The user's stored events and the online ones already read (`recent`), merged."""
        limit = self.settings.history_limit
        stored = self.store.user_events(user, limit=limit)
        if not recent:
            return stored[-limit:]
        seen: set[str] = set()
        merged: list[Event] = []
        for e in sorted([*stored, *recent], key=lambda e: e.timestamp):
            key = e.dedup_key()
            if key not in seen:
                seen.add(key)
                merged.append(e)
        return merged[-limit:]

    # ------------------------------------------------------------------ reads
    def _request_history(self, user: str) -> tuple[HistoryEvent, ...]:
        """What a request reads: `history(user)` as `HistoryEvent`s; when the online state
        holds nothing for the user (most requests), the stored (item, type, time) rows go
        straight into `HistoryEvent`s without building `Event`s (the same items)."""
        limit = self.settings.history_limit
        recent = self.online.recent(user, limit)  # read once, merged only when there is any
        if recent:
            return _history_events(self._merged(user, recent))
        rows = self.store.user_item_history(user, limit)
        return tuple(map(HistoryEvent._make, rows))

    def recommend(self, user: str, q: RecQuery) -> tuple[Served, list[Recommendation]]:
        served = self.models.get()
        if self.cache.size <= 0:  # no cache: no key to digest either
            return served, self._run(served, self.request(user, q))
        history = self.history(user)  # Events: the cache key digests their identities
        key = (
            user,
            served.recipe,
            served.version,
            self.catalog_version,
            state_version(history),
            q,
        )
        hit = self.cache.get(key)
        if hit is not None:
            self.metrics.cache.labels("hit").inc()
            return served, hit
        self.metrics.cache.labels("miss").inc()
        recs = self._run(served, self.request(user, q, history))
        self.cache.put(user, key, recs)
        return served, recs

    def _run(self, served: Served, request: RecRequest) -> list[Recommendation]:
        """The pipeline, one request at a time per process: the chain is CPU-bound Python and
        numpy, so worker threads running it together only fight over the GIL (measured: twice
        the CPU per request at 4 connections); parallelism comes from worker processes."""
        with self._compute:
            return list(served.pipeline.recommend(request))

    def request(self, user: str, q: RecQuery, history: Sequence[Event] | None = None) -> RecRequest:
        """The pipeline request for `user` (history read now unless given)."""
        return RecRequest(
            user_id=user,
            k=q.k,
            # HistoryEvents already: the request's own conversion then has nothing to do
            history=self._request_history(user) if history is None else _history_events(history),
            diversity=q.diversity,
            category=q.category,
            min_price=q.min_price,
            max_price=q.max_price,
        )

    # ------------------------------------------------------------------ writes
    def add_events(self, events: Sequence[Event]) -> AddResult:
        """Store events (durable before this returns), then append them to online state."""
        result = self.store.add_events(events)
        by_user: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            by_user[e.user_id].append(e)
        for user, evs in by_user.items():
            self.online.append(user, evs)
        served = self.models.current
        if served is not None:  # exploration learns from clicks on the items it tries
            for e in events:
                if e.item_id:
                    served.pipeline.record_event(e.item_id, e.event_type)
        self.metrics.events.labels("accepted").inc(len(events))
        return result

    def upsert_items(self, items: Sequence[Item]) -> None:
        """Write catalog changes to the store and to the served pipeline, at once."""
        self.store.upsert_items(items)
        self.models.update_items(items)
        self.catalog_version += 1
        self.cache.clear()

    def forget_user(self, user: str) -> dict[str, Any]:
        """Erasure: the user's events, profile, online state and cached results, at once.

        The one place DELETE /v1/users/{user_id} lands; the privacy layer's audited erasure
        (`shoprec.storage.erasure.forget_user`) takes these same objects.
        """
        served = self.models.current
        log_path = self.settings.erasure_log
        record = forget_user(
            user,
            self.store,
            self.online,
            [("cache", self.cache)],
            ErasureLog(log_path) if log_path else None,
            [served.path] if served is not None else [],
        )
        # Until retraining, the artifact may still hold the user's trained history.
        self.models.forget_user(user)
        log.info("erasure %s: removed %s", record.erasure_id, record.removed)
        return dict(record.removed)

    def close(self) -> None:
        self.models.stop_watching()
        for closable in (self.online, self.store):
            try:
                closable.close()
            except Exception:  # closing must not hide the shutdown
                log.exception("error while closing %s", type(closable).__name__)


def _history_events(events: Sequence[Event]) -> tuple[HistoryEvent, ...]:
    """Stored or online `Event`s as the pipeline's history (events without an item left out)."""
    return tuple(
        HistoryEvent(str(e.item_id), str(e.event_type), float(e.timestamp))
        for e in events
        if e.item_id
    )
