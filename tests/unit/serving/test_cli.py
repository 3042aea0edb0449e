"""`shoprec mint-key` prints a key once and the hashed line for the keys file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.serving.auth import KeyRing, hash_key, read_keys_file


def test_mint_key_line_round_trips_through_a_keys_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mint-key", "--scopes", "read,write", "--name", "backend"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    key, entry = lines["key"].strip(), lines["line"].strip()
    assert entry.startswith(hash_key(key)) and key not in entry
    f = tmp_path / "keys"
    f.write_text(entry + "\n")
    spec = KeyRing(read_keys_file(f)).lookup(key)
    assert spec is not None and spec.scopes == ("read", "write") and spec.name == "backend"


def test_mint_key_with_pepper_and_bad_scope(tmp_path: Path) -> None:
    pepper = tmp_path / "pepper"
    pepper.write_text("a-long-server-side-secret\n")
    result = CliRunner().invoke(app, ["mint-key", "--pepper-file", str(pepper)])
    assert result.exit_code == 0 and "hmac-sha256:" in result.stdout
    bad = CliRunner().invoke(app, ["mint-key", "--scopes", "root"])
    assert bad.exit_code == 2


def test_serve_reads_config_env_and_flags(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **opts: seen.update(app=app, opts=opts))
    monkeypatch.setenv("SHOPREC_MAX_K", "40")
    cfg = tmp_path / "shoprec.toml"
    cfg.write_text("[serving]\nread_requires_key = true\nrate_limit_per_s = 5.0\nmax_k = 30\n")
    args = [
        "serve",
        "--artifacts",
        str(tmp_path),
        "--store",
        "sqlite:///x.db",
        "--config",
        str(cfg),
        "--rate-limit",
        "7",
        "--port",
        "8123",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    settings = seen["app"].state.settings
    assert settings.read_requires_key is True  # from the file
    assert settings.max_k == 40  # the environment beats the file
    assert settings.rate_limit_per_s == 7.0  # a flag beats both
    assert seen["opts"]["port"] == 8123 and seen["opts"]["access_log"] is False
    bad = tmp_path / "bad.toml"
    bad.write_text("[serving]\nmax_kk = 1\n")
    result = CliRunner().invoke(app, [*args[:5], "--config", str(bad)])
    assert result.exit_code == 2 and "max_kk" in result.output
