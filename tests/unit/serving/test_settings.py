"""Service settings: environment, TOML tables, validation."""

from __future__ import annotations

import pytest

from shoprec.config import ConfigError
from shoprec.serving.settings import ServingSettings


def test_from_env_reads_prefixed_variables_and_overrides() -> None:
    env = {
        "SHOPREC_STORE_URL": "sqlite:///x.db",
        "SHOPREC_READ_REQUIRES_KEY": "true",
        "SHOPREC_RATE_LIMIT_PER_S": "5.5",
        "SHOPREC_MAX_K": "50",
        "SHOPREC_PLAYGROUND_USERS": "u1, u2",
        "UNRELATED": "1",
    }
    s = ServingSettings.from_env(env, max_k=20)
    assert s.store_url == "sqlite:///x.db" and s.read_requires_key is True
    assert s.rate_limit_per_s == 5.5 and s.max_k == 20
    assert s.playground_users == ("u1", "u2")
    with pytest.raises(ConfigError, match="SHOPREC_MAX_K"):
        ServingSettings.from_env({"SHOPREC_MAX_K": "many"})


def test_from_mapping_refuses_unknown_keys_and_scopes() -> None:
    s = ServingSettings.from_mapping(
        {"max_k": 30, "api_keys": [{"hash": "sha256:ab", "scopes": "read,write", "name": "x"}]}
    )
    assert s.api_keys[0].scopes == ("read", "write")
    with pytest.raises(ConfigError, match="unknown key"):
        ServingSettings.from_mapping({"max_kk": 3})
    with pytest.raises(ConfigError, match="unknown scope"):
        ServingSettings.from_mapping({"api_keys": [{"hash": "sha256:ab", "scopes": ["root"]}]})
    with pytest.raises(ConfigError):
        ServingSettings(max_body_bytes=0).checked()


def test_from_env_starts_from_a_base() -> None:
    base = ServingSettings(max_k=7, read_requires_key=True)
    s = ServingSettings.from_env({"SHOPREC_MAX_K": "9"}, base=base, cache_size=0)
    assert (s.max_k, s.read_requires_key, s.cache_size) == (9, True, 0)


def test_json_round_trip_and_settings_file(tmp_path) -> None:  # noqa: ANN001
    from shoprec.serving.settings import ApiKeySpec

    s = ServingSettings(
        max_k=11, api_keys=(ApiKeySpec("sha256:ab", ("admin",), "ops"),), playground_users=("u1",)
    )
    assert ServingSettings.from_json(s.to_json()) == s
    f = tmp_path / "settings.json"
    f.write_text(s.to_json())
    got = ServingSettings.from_env({"SHOPREC_SETTINGS_FILE": str(f), "SHOPREC_CACHE_SIZE": "3"})
    assert got.max_k == 11 and got.cache_size == 3 and got.api_keys == s.api_keys
