"""The service's retention purge: a background thread that deletes events older than the
retention period (`ServingSettings.retention_days`) at start and then every
`retention_purge_s` seconds, writing a "retention" record to the erasure log when any went.

Several workers each run one; the purge is idempotent (a second one finds nothing to do).
Training leaves expired events out on its own (`storage.erasure.apply_ledger`), so the
service's purge is what keeps them out of the *store*.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shoprec.serving.periodic import Periodic
from shoprec.storage.base import Store
from shoprec.storage.erasure import ErasureLog, purge_expired

log = logging.getLogger(__name__)


class RetentionPurger:
    """Purge events older than `days` from `store` now and every `interval_s` seconds.

    Parameters
    ----------
    store : Store
    days : float
        The retention period; <= 0 disables the purger.
    interval_s : float
        Seconds between purges after the first; <= 0 purges once, at start.
    erasure_log : str
        Audit log path ("" keeps no record).
    on_purged : callable, optional
        Called with the number of events removed by each purge that removed any.
    """

    def __init__(
        self,
        store: Store,
        days: float,
        interval_s: float,
        erasure_log: str = "",
        on_purged: Callable[[int], None] | None = None,
    ):
        self.store = store
        self.days = float(days)
        self.interval_s = float(interval_s)
        self.audit_log = ErasureLog(erasure_log) if erasure_log else None
        self.on_purged = on_purged
        self.purged = 0  # events removed since start
        self._job: Periodic | None = None

    def purge_once(self) -> int:
        n = purge_expired(self.store, self.days, audit_log=self.audit_log)
        if n:
            self.purged += n
            log.info("retention purge removed %d events older than %g days", n, self.days)
            if self.on_purged is not None:
                self.on_purged(n)
        return n

    def start(self) -> None:
        if self.days > 0 and self._job is None:
            self._job = Periodic(self.purge_once, self.interval_s, "shoprec-retention", True)
            self._job.start()

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()
            self._job = None
