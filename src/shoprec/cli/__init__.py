"""`shoprec` command line: each subcommand module registers its commands on `app`."""

from shoprec.cli.app import app

# Each import registers that module's subcommands; add one line per module.
from shoprec.cli import data_commands  # noqa: E402,F401  ingest, stats, generate
from shoprec.cli import eval_commands  # noqa: E402,F401  evaluate
from shoprec.cli import serve_commands  # noqa: E402,F401  serve, mint-key
from shoprec.cli import train_commands  # noqa: E402,F401  train
from shoprec.cli import privacy_commands  # noqa: E402,F401  forget-user, train-private, audit-privacy

from shoprec.cli import demo_command  # noqa: E402,F401  demo

__all__ = ["app"]
