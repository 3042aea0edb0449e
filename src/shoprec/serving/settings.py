"""Settings of the HTTP service: one frozen dataclass, built by the CLI, a TOML section or env.

This is the only object in shoprec that reads environment variables (`ServingSettings.from_env`);
everything else receives its settings. API keys are never held in clear text: settings carry
their hashes (see `shoprec.serving.auth`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprec.config import Config, ConfigError, from_dict

SCOPES: tuple[str, ...] = ("read", "write", "admin")
"""API key scopes. `admin` implies the other two; `write` and `read` are independent."""


@dataclass(frozen=True)
class ApiKeySpec:
    """One API key, by hash.

    Parameters
    ----------
    hash : str
        ``"sha256:<hex>"`` (SHA-256 of the key) or ``"hmac-sha256:<hex>"`` (HMAC-SHA256 of the
        key under ``ServingSettings.key_pepper``). Mint both with ``shoprec mint-key``.
    scopes : tuple of str
        Any of ``SCOPES``.
    name : str
        A label for logs and metrics (never the key itself).
    """

    hash: str
    scopes: tuple[str, ...] = ("read",)
    name: str = ""


@dataclass(frozen=True)
class ServingSettings:
    """Everything the service needs; every field has a safe default.

    Attributes are documented inline with their defaults (the TOML section ``[serving]``
    accepts the same keys).
    """

    artifacts: str = ""  # artifact folder, or a root holding version folders and a `latest` pointer
    store_url: str = "sqlite:///shoprec.db"  # events, catalog and users
    online_url: str = (
        "memory://"  # online state; redis://127.0.0.1:6379/0 to share it across processes
    )
    api_keys: tuple[ApiKeySpec, ...] = ()  # hashed keys given directly
    keys_file: str = ""  # a file of hashed keys, one per line: "<hash> <scope,scope> [name]"
    key_pepper: str = ""  # secret for "hmac-sha256:" key hashes; empty: only "sha256:" hashes work
    read_requires_key: bool = False  # false: read routes are open; true: they need a `read` key
    open_writes: bool = False  # DEVELOPMENT ONLY: write/admin routes without any key
    rate_limit_per_s: float = 100.0  # sustained requests per second per key (or per client IP)
    rate_limit_burst: int = 200  # bucket size; rate_limit_per_s <= 0 disables rate limiting
    max_body_bytes: int = 1_000_000  # larger request bodies get 413
    max_events_per_request: int = 1000  # longer event lists get 413
    max_k: int = 200  # largest k / n a request may ask for
    history_limit: int = 50  # latest events per user handed to the pipeline
    cache_size: int = 10_000  # cached recommendation lists (0 disables the cache)
    cache_ttl_s: float = 60.0  # a cached list is recomputed after this long (0: no expiry)
    reload_poll_s: float = 2.0  # how often the `latest` pointer is checked; 0 disables watching
    playground: bool = True  # serve the web playground at /playground
    playground_users: tuple[str, ...] = ()  # example user ids the playground offers to pick
    pseudonym_keys_file: str = ""  # "key_id secret" lines, oldest first: user ids are stored as HMAC pseudonyms; "" keeps ids as sent
    pii_policy: str = "drop"  # PII (names, e-mails, phones, addresses, IPs) in event context: drop the fields | reject the event
    erasure_log: str = (
        ""  # append-only audit log of erasures (JSON lines), read by training; "" keeps none
    )
    retention_days: float = (
        0.0  # the service deletes events older than this many days; 0 keeps them
    )
    retention_purge_s: float = 3600.0  # seconds between the service's retention purges

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServingSettings:
        """Build from a plain mapping (a TOML ``[serving]`` table); unknown keys are errors."""
        raw = dict(data)
        keys = raw.pop("api_keys", ())
        settings = from_dict(cls, raw, "serving")
        specs = tuple(_key_spec(k, i) for i, k in enumerate(keys))
        return dataclasses.replace(settings, api_keys=specs).checked()

    @classmethod
    def from_config(cls, cfg: Config) -> ServingSettings:
        """The ``[serving]`` section of a loaded `Config`, with the store URLs of ``[store]``."""
        base = {"store_url": cfg.store.url, "online_url": cfg.store.online_url}
        base.update(cfg.sections.get("serving", {}))
        return cls.from_mapping(base)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        base: ServingSettings | None = None,
        **overrides: Any,
    ) -> ServingSettings:
        """`base` (default: the defaults), then ``SHOPREC_<FIELD>`` variables, then `overrides`.

        Tuples are comma-separated (``SHOPREC_PLAYGROUND_USERS=u1,u2``); booleans accept
        1/0/true/false. Keys come from ``SHOPREC_KEYS_FILE`` only (never from a variable).
        """
        env = os.environ if env is None else env
        if base is None and env.get("SHOPREC_SETTINGS_FILE"):
            # several uvicorn workers each build their app from the file the CLI wrote
            base = cls.from_json(Path(env["SHOPREC_SETTINGS_FILE"]).read_text())
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = "SHOPREC_" + f.name.upper()
            if f.name == "api_keys" or name not in env or name == "SHOPREC_SETTINGS_FILE":
                continue
            values[f.name] = _from_text(f.type, env[name], name)
        values.update(overrides)
        return dataclasses.replace(base or cls(), **values).checked()

    def to_json(self) -> str:
        """Every field as JSON (key hashes included, never keys), for worker processes."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServingSettings:
        return cls.from_mapping(json.loads(text))

    def checked(self) -> ServingSettings:
        """Raise `ConfigError` on values the service cannot run with; return self."""
        if self.max_body_bytes < 1 or self.max_events_per_request < 1 or self.max_k < 1:
            raise ConfigError(
                "serving: max_body_bytes, max_events_per_request and max_k must be >= 1"
            )
        if self.rate_limit_per_s > 0 and self.rate_limit_burst < 1:
            raise ConfigError("serving: rate_limit_burst must be >= 1 when rate limiting is on")
        if self.history_limit < 1:
            raise ConfigError("serving: history_limit must be >= 1")
        if self.retention_days < 0 or self.retention_purge_s < 0:
            raise ConfigError("serving: retention_days and retention_purge_s must be >= 0")
        if self.pii_policy not in ("drop", "reject"):
            raise ConfigError("serving: pii_policy must be 'drop' or 'reject'")
        for spec in self.api_keys:
            bad = set(spec.scopes) - set(SCOPES)
            if bad:
                raise ConfigError(f"serving: unknown scope(s) {sorted(bad)} for key {spec.name!r}")
        return self


def _key_spec(raw: Any, i: int) -> ApiKeySpec:
    if isinstance(raw, ApiKeySpec):
        return raw
    if not isinstance(raw, Mapping) or "hash" not in raw:
        raise ConfigError(f"serving.api_keys[{i}]: expected a table with a 'hash' key")
    scopes = raw.get("scopes", ("read",))
    if isinstance(scopes, str):
        scopes = tuple(s.strip() for s in scopes.split(",") if s.strip())
    unknown = set(raw) - {"hash", "scopes", "name"}
    if unknown:
        raise ConfigError(f"serving.api_keys[{i}]: unknown key(s) {sorted(unknown)}")
    return ApiKeySpec(str(raw["hash"]), tuple(scopes), str(raw.get("name", "")))


def _from_text(hint: Any, text: str, name: str) -> Any:
    hint_s = str(hint)
    try:
        if hint_s.startswith("tuple"):
            return tuple(s.strip() for s in text.split(",") if s.strip())
        if hint_s == "bool":
            low = text.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return low in ("1", "true", "yes")
        if hint_s == "int":
            return int(text)
        if hint_s == "float":
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}: cannot read {text!r} as {hint_s}") from None
    return text


__all__ = ["SCOPES", "ApiKeySpec", "ServingSettings"]
