"""The `seneca` command line: ingest, run, query and inspect the lake."""

from __future__ import annotations

import sys

import typer

from flows.cli.commands import app
from warehouse.errors import SenecaError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: expected failures become one line on stderr and exit code 1."""
    try:
        app()
    except SenecaError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
