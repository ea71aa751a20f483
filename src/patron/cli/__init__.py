"""The ``patron`` command line (Typer + Rich): ``patron = "patron.cli:app"``."""

from patron.cli.commands import app

__all__ = ["app"]
