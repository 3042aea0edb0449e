"""From raw events to training interactions: drop bots and outliers, weight event types, decay
with time, collapse repeats, k-core filter, then build `InteractionData`.

Every filter counts what it removed, per reason, so a shop can see why data went missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.config import CleaningConfig
from shoprec.data.interactions import InteractionData


@dataclass
class CleaningReport:
    """What cleaning removed: events per reason and the users flagged as bots."""

    events_in: int = 0
    events_out: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    bot_users: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "events_in": self.events_in,
            "events_out": self.events_out,
            "removed": dict(self.removed),
            "bot_users": len(self.bot_users),
        }


def _user_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per user: event count, time span and coefficient of variation of inter-event gaps."""
    f = frame[["user_id", "timestamp"]].sort_values(["user_id", "timestamp"], kind="stable")
    gaps = f["timestamp"].diff()
    gaps[f["user_id"].ne(f["user_id"].shift())] = np.nan
    g = gaps.groupby(f["user_id"], sort=False)
    stats = pd.DataFrame(
        {
            "n": f.groupby("user_id", sort=False)["timestamp"].size(),
            "span": f.groupby("user_id", sort=False)["timestamp"].agg(lambda s: s.max() - s.min()),
            "gap_mean": g.mean(),
            "gap_std": g.std(ddof=0),
        }
    )
    stats["cv"] = stats["gap_std"] / stats["gap_mean"].replace(0, np.nan)
    return stats


def clean_events(
    frame: pd.DataFrame, cfg: CleaningConfig = CleaningConfig()
) -> tuple[pd.DataFrame, CleaningReport]:
    """Remove bots (sustained event rate, robot-like regularity) and over-long sessions.

    Parameters
    ----------
    frame : DataFrame with at least user_id, item_id, event_type, timestamp; optional session_id.
    """
    report = CleaningReport(events_in=len(frame))
    if frame.empty:
        return frame.copy(), report
    stats = _user_stats(frame)
    minutes = (stats["span"] / 60.0).clip(lower=1.0)
    fast = (stats["n"] >= cfg.min_bot_window_events) & (
        stats["n"] / minutes > cfg.max_events_per_minute
    )
    regular = (stats["n"] >= cfg.min_regularity_events) & (stats["cv"] < cfg.min_interval_cv)
    keep = pd.Series(True, index=frame.index)
    for reason, flagged in (("bot_rate", fast), ("bot_regularity", regular & ~fast)):
        users = stats.index[flagged]
        hit = frame["user_id"].isin(users) & keep
        report.removed[reason] = int(hit.sum())
        report.bot_users.extend(map(str, users))
        keep &= ~hit
    if "session_id" in frame and cfg.max_events_per_session > 0:
        sess = frame["session_id"].where(frame["session_id"].notna(), None)
        sizes = frame.groupby(sess, dropna=True)["user_id"].transform("size")
        long = sizes.reindex(frame.index).fillna(0) > cfg.max_events_per_session
        report.removed["long_session"] = int((long & keep).sum())
        keep &= ~long
    out = frame[keep].copy()
    report.events_out = len(out)
    return out, report


def feedback_strength(frame: pd.DataFrame, cfg: CleaningConfig = CleaningConfig()) -> np.ndarray:
    """Implicit-feedback strength per event: the event type's weight, ratings scaled by value/5,
    times an exponential time decay with half-life `cfg.half_life_days` (0 = none)."""
    w_by_type = {k: float(v) for k, v in vars(cfg.weights).items()}
    w = frame["event_type"].map(w_by_type).fillna(0.0).to_numpy(dtype=np.float64)
    if "value" in frame:
        is_rating = (frame["event_type"] == "rating").to_numpy()
        vals = pd.to_numeric(frame["value"], errors="coerce").fillna(5.0).to_numpy()
        w = np.where(is_rating, w * np.clip(vals, 0, 10) / 5.0, w)
    if cfg.half_life_days > 0 and len(frame):
        ts = frame["timestamp"].to_numpy(dtype=np.float64)
        age_days = (ts.max() - ts) / 86400.0
        w = w * np.power(0.5, age_days / cfg.half_life_days)
    return w


def collapse_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """Merge consecutive events of one user on one item (view, click, cart, buy of the same
    product) into one interaction: first timestamp, summed weight."""
    f = frame.sort_values(["user_id", "timestamp"], kind="stable")
    new_run = f["user_id"].ne(f["user_id"].shift()) | f["item_id"].ne(f["item_id"].shift())
    run = new_run.cumsum()
    out = f.groupby(run, sort=False).agg(
        user_id=("user_id", "first"),
        item_id=("item_id", "first"),
        timestamp=("timestamp", "first"),
        weight=("weight", "sum"),
    )
    return out.reset_index(drop=True)


def k_core(frame: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Repeatedly drop users and items with fewer interactions than the thresholds."""
    f = frame
    while True:
        uc = f["user_id"].map(f["user_id"].value_counts())
        ic = f["item_id"].map(f["item_id"].value_counts())
        keep = (uc >= min_user) & (ic >= min_item)
        if keep.all():
            return f
        f = f[keep]


def build_interactions(
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    cfg: CleaningConfig = CleaningConfig(),
    exclude_users: set[str] | None = None,
) -> tuple[InteractionData, CleaningReport]:
    """The full cleaning chain; returns the training data and what was removed.

    `exclude_users` (pseudonymous ids) are left out entirely, e.g. honoured erasures.
    """
    f = events
    if exclude_users:
        f = f[~f["user_id"].isin(exclude_users)]
    f = f[f["item_id"].notna()]
    f, report = clean_events(f, cfg)
    f = f.assign(weight=feedback_strength(f, cfg))
    dropped = int((f["weight"] <= 0).sum())
    report.removed["zero_weight"] = dropped
    f = f[f["weight"] > 0]
    if cfg.collapse_repeats:
        f = collapse_repeats(f)
    before = len(f)
    f = k_core(f, cfg.min_user_interactions, cfg.min_item_interactions)
    report.removed["k_core"] = before - len(f)
    if users is not None and exclude_users:
        users = users[~users["user_id"].isin(exclude_users)]
    if users is not None and "user_id" in users:
        users = users[users["user_id"].isin(set(f["user_id"]))]
    data = InteractionData.from_frame(f.reset_index(drop=True), item_table=items, user_table=users)
    report.events_out = data.n_interactions
    return data, report
