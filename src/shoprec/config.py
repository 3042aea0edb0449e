"""Typed, frozen configuration: one section per component, read from one TOML file.

Each section is a frozen dataclass with a default for every key. Unknown sections and keys
are errors, so a typo never silently falls back to a default. Components receive *their*
section, never the whole configuration.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


@dataclass(frozen=True)
class EventWeights:
    """Implicit-feedback strength of each event type (0 drops the type)."""

    view: float = 1.0
    click: float = 2.0
    add_to_cart: float = 4.0
    remove_from_cart: float = 0.0
    wishlist: float = 3.0
    purchase: float = 8.0
    rating: float = 5.0
    search: float = 0.0


@dataclass(frozen=True)
class CleaningConfig:
    """Bot/outlier filters and feedback shaping applied before training."""

    max_events_per_minute: float = 120.0  # users faster than this, sustained, are bots
    min_bot_window_events: int = 30  # the rate test needs at least this many events
    max_events_per_session: int = 2000  # sessions longer than this are dropped
    min_interval_cv: float = (
        0.05  # inter-event gaps this regular (coefficient of variation) look robotic
    )
    min_regularity_events: int = 20  # the regularity test needs at least this many events
    half_life_days: float = 0.0  # time decay of feedback strength; 0 disables decay
    min_user_interactions: int = 1  # k-core on users
    min_item_interactions: int = 1  # k-core on items
    collapse_repeats: bool = True  # consecutive events of a user on one item become one interaction
    weights: EventWeights = field(default_factory=EventWeights)


@dataclass(frozen=True)
class SplitConfig:
    """How held-out data is chosen."""

    protocol: str = "leave_one_out"  # leave_one_out | temporal | random
    test_fraction: float = 0.1  # temporal and random splits
    valid_fraction: float = 0.1
    max_history: int = 50  # most recent items used as model input
    seed: int = 0


@dataclass(frozen=True)
class StoreConfig:
    """Where events, catalog and users live."""

    url: str = "sqlite:///shoprec.db"
    online_url: str = "memory://"  # or redis://127.0.0.1:6379/0


@dataclass(frozen=True)
class Config:
    """The whole configuration. Sections are added here as components appear."""

    store: StoreConfig = field(default_factory=StoreConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Raw tables for sections registered by optional components (see `section`)."""


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass `cls` from a mapping, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{path or cls.__name__}] must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"[{path or cls.__name__}] unknown key(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, path)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is not hint:
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r}")
    if origin is tuple:
        return tuple(value)
    return value


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML file into a `Config`; no path gives the defaults."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    core = {f.name for f in dataclasses.fields(Config)} - {"sections"}
    known = {k: v for k, v in raw.items() if k in core}
    extra = {k: v for k, v in raw.items() if k not in core}
    cfg = from_dict(Config, known)
    return dataclasses.replace(cfg, sections=extra)


def section(cfg: Config, name: str, cls: type[T]) -> T:
    """A component's own section, typed: `section(cfg, "serving", ServingConfig)`."""
    return from_dict(cls, cfg.sections.get(name, {}), name)
