"""Learning-rate schedules: linear warm-up, then cosine, linear or constant decay.

Schedules are functions of *progress* in [0, 1] rather than of the step count, so the loop
can drive them by whichever budget runs out first: the epochs or the wall-clock seconds.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "linear", "constant")


def lr_factor(progress: float, warmup: float, schedule: str, min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at `progress` (fraction of the budget used).

    Parameters
    ----------
    progress : float
        Fraction of training done, clipped to [0, 1].
    warmup : float
        Fraction of the budget spent ramping linearly from 0 to 1.
    schedule : {"cosine", "linear", "constant"}
        Decay after warm-up, down to `min_ratio` at progress 1.
    min_ratio : float
        Floor of the multiplier at the end of training.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return max(p / warmup, 1e-3)
    if schedule == "constant":
        return 1.0
    rest = (p - warmup) / (1.0 - warmup) if warmup < 1 else 1.0
    if schedule == "linear":
        decay = 1.0 - rest
    else:
        decay = 0.5 * (1.0 + math.cos(math.pi * rest))
    return min_ratio + (1.0 - min_ratio) * decay
