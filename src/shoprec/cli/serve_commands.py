"""`shoprec serve` (the HTTP service under uvicorn) and `shoprec mint-key` (an API key and its hash)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from shoprec.cli.app import app

err = Console(stderr=True)


def uvicorn_options(
    host: str, port: int, log_level: str = "info", workers: int = 1
) -> dict[str, Any]:
    """Options for `uvicorn.run`. uvicorn's access log is off: it prints paths and query
    strings, which hold user ids; the service writes its own access log without them."""
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,
        "log_level": log_level,
        "server_header": False,
        "proxy_headers": False,
    }


@app.command()
def serve(
    artifacts: Annotated[
        Path,
        typer.Option(help="Artifact folder, or a root holding versions and a `latest` pointer"),
    ],
    store: Annotated[str, typer.Option(help="Store URL: sqlite:///path or postgresql://...")],
    host: Annotated[
        str, typer.Option(help="Address to bind (keep 127.0.0.1 unless proxied)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    online: Annotated[
        str | None, typer.Option(help="Online state: memory:// (default) or redis://host:6379/0")
    ] = None,
    keys_file: Annotated[
        Path | None, typer.Option(help="Hashed API keys, one per line (see `shoprec mint-key`)")
    ] = None,
    read_requires_key: Annotated[
        bool | None, typer.Option(help="Require a `read` key for reads (default: open)")
    ] = None,
    insecure_open_writes: Annotated[
        bool, typer.Option(help="DEVELOPMENT ONLY: accept writes without any key")
    ] = False,
    rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second per key, 0 off (default 100)")
    ] = None,
    reload_poll: Annotated[
        float | None, typer.Option(help="Seconds between `latest` checks, 0 off (default 2)")
    ] = None,
    playground_users: Annotated[
        str | None, typer.Option(help="Comma-separated user ids the playground offers")
    ] = None,
    retention_days: Annotated[
        float | None,
        typer.Option(help="Delete events older than this many days (hourly), 0 keeps them"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file; its [serving] section (see ServingSettings)")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes; more than one needs --online redis://...")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Serve recommendations over HTTP (FastAPI under uvicorn, one worker)."""
    import uvicorn

    from shoprec.serving.app import create_app
    from shoprec.serving.settings import ServingSettings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from shoprec.config import ConfigError, load_config

    # precedence: defaults < --config [serving] < SHOPREC_* environment < flags given here
    flags = {
        "artifacts": str(artifacts),
        "store_url": store,
        "online_url": online,
        "keys_file": str(keys_file) if keys_file else None,
        "read_requires_key": read_requires_key,
        "open_writes": True if insecure_open_writes else None,
        "rate_limit_per_s": rate_limit,
        "reload_poll_s": reload_poll,
        "retention_days": retention_days,
        "playground_users": None
        if playground_users is None
        else tuple(u.strip() for u in playground_users.split(",") if u.strip()),
    }
    try:
        base = ServingSettings.from_config(load_config(config)) if config else None
        settings = ServingSettings.from_env(
            base=base, **{k: v for k, v in flags.items() if v is not None}
        )
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if insecure_open_writes:
        err.print("[yellow]warning:[/yellow] writes are open to anyone (--insecure-open-writes)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] binding to {host}: put a TLS proxy in front")
    if workers < 1:
        err.print("[red]error:[/red] --workers must be at least 1")
        raise typer.Exit(2)
    if workers == 1:
        uvicorn.run(create_app(settings), **uvicorn_options(host, port, log_level))
        return
    if not settings.online_url.startswith("redis://"):
        err.print("[red]error:[/red] several workers must share online state: --online redis://...")
        raise typer.Exit(2)
    import os
    import tempfile

    # each worker process builds its own app from these settings (hashes only, no keys)
    fd, path = tempfile.mkstemp(prefix="shoprec-serve-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(settings.to_json())
    os.environ["SHOPREC_SETTINGS_FILE"] = path
    from shoprec.serving.workers import reuse_port_supported, serve_workers

    try:
        if reuse_port_supported():
            # one socket per worker: the kernel spreads connections evenly over them
            try:
                serve_workers(host, port, workers, uvicorn_options(host, port, log_level))
            except OSError as exc:
                err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc}")
                raise typer.Exit(1) from exc
        else:
            uvicorn.run(
                "shoprec.serving.app:app_from_env",
                factory=True,
                **uvicorn_options(host, port, log_level, workers),
            )
    finally:
        os.unlink(path)


@app.command("mint-key")
def mint_key_command(
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, admin")] = "read",
    name: Annotated[str, typer.Option(help="Label for logs and metrics")] = "key",
    pepper_file: Annotated[
        Path | None,
        typer.Option(help="File holding the service's key pepper (gives an hmac-sha256 hash)"),
    ] = None,
) -> None:
    """Mint an API key: the key goes to the client (shown once), the line to the keys file."""
    from shoprec.serving.auth import hash_key, mint_key
    from shoprec.serving.settings import SCOPES

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    bad = sorted(set(wanted) - set(SCOPES))
    if not wanted or bad:
        err.print(f"[red]error:[/red] scopes must be among {', '.join(SCOPES)}; got {scopes!r}")
        raise typer.Exit(2)
    if any(c.isspace() for c in name) or not name:
        err.print("[red]error:[/red] --name must be one word")
        raise typer.Exit(2)
    pepper = pepper_file.read_text().strip() if pepper_file else ""
    key = mint_key()
    typer.echo(f"key:  {key}")
    typer.echo(f"line: {hash_key(key, pepper)} {','.join(wanted)} {name}")
    err.print("Give the key to the client once; put the line in the service's keys file.")
