"""Evaluation protocols: how a dataset becomes train / validation / test.

A protocol is a function `(data: InteractionData, cfg: SplitConfig) -> Split`. They are listed
in one registry of `name -> "module:function"`, imported lazily, so another module adds a
protocol with one line (in `_PROTOCOLS` or a call to `register_protocol`).

- `loo`: leave-one-out next-item full ranking (`shared/data/README.md`): the last item of a
  user is the test target, the one before it the validation target. The model input is the
  full history before the target (sequence models truncate to their own maximum length,
  e.g. the most recent 50 items), and every item of that history is excluded from ranking.
- `temporal`: one global time cut; the latest `test_fraction` of interactions are test
  targets, the slice before them validation (only users with earlier history are scored).
- `random`: interactions assigned at random (seeded); a sanity check, not a product metric.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from shoprec.config import SplitConfig
from shoprec.data.interactions import InteractionData
from shoprec.data.splits import Split, leave_one_out, random_split, temporal_split

Protocol = Callable[[InteractionData, SplitConfig], Split]

_PROTOCOLS: dict[str, str | Protocol] = {
    "loo": "shoprec.evaluation.protocols:loo",
    "temporal": "shoprec.evaluation.protocols:temporal",
    "random": "shoprec.evaluation.protocols:random",
    # cold start (shoprec.evaluation.cold_start): held-out items / users
    **{
        f"cold-{k}": f"shoprec.evaluation.cold_start:cold_{k.replace('-', '_')}"
        for k in ("items", "users", "users-0", "users-1", "users-3", "users-5")
    },
}
_ALIASES = {"leave_one_out": "loo", "leave-one-out": "loo"}


def loo(data: InteractionData, cfg: SplitConfig) -> Split:
    """Leave-one-out: last item test, second-to-last validation, the rest trains."""
    return leave_one_out(data)


def temporal(data: InteractionData, cfg: SplitConfig) -> Split:
    """Global temporal cut with `cfg.test_fraction` / `cfg.valid_fraction`."""
    return temporal_split(data, cfg.test_fraction, cfg.valid_fraction)


def random(data: InteractionData, cfg: SplitConfig) -> Split:
    """Random holdout of interactions (seeded by `cfg.seed`)."""
    return random_split(data, cfg.test_fraction, cfg.valid_fraction, cfg.seed)


def register_protocol(name: str, target: str | Protocol) -> None:
    """Add a protocol: a function or a lazy "module:function" string."""
    if isinstance(target, str) and ":" not in target:
        raise ValueError(f"register_protocol: expected 'module:function', got {target!r}")
    _PROTOCOLS[name] = target


def available_protocols() -> list[str]:
    return sorted(_PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol function registered under `name` (aliases: leave_one_out)."""
    key = _ALIASES.get(name, name)
    try:
        target = _PROTOCOLS[key]
    except KeyError:
        raise ValueError(
            f"unknown protocol {name!r}; available: {', '.join(available_protocols())}"
        ) from None
    if isinstance(target, str):
        module, func = target.split(":")
        target = getattr(importlib.import_module(module), func)
    return target


def make_split(
    data: InteractionData, protocol: str = "loo", cfg: SplitConfig | None = None
) -> Split:
    """Split `data` with the named protocol."""
    return get_protocol(protocol)(data, cfg or SplitConfig())
