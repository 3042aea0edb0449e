"""The one `shoprec` console script. Only the CLI parses arguments."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="shoprec",
    help="shoprec: a self-hosted product recommendation engine for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
