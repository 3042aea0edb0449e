"""`shoprec` command line: each subcommand module registers its commands on `app`."""

# Each import registers that module's subcommands; add one line per module.
from shoprec.cli import (  # noqa: F401
    data_commands,  # ingest, stats, generate
    demo_command,  # demo
    eval_commands,  # evaluate
    privacy_commands,  # forget-user, purge-expired, rekey-users, train-private, audit-privacy
    serve_commands,  # serve, mint-key
    train_commands,  # train
)
from shoprec.cli.app import app

__all__ = ["app"]
