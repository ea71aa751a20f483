"""The ``patron`` Typer app: every command registered, in the order ``patron --help`` lists them.

The commands live in grouped modules (data, models, activation, service, insights, reporting, demo); each parses its
arguments, calls :mod:`patron.pipeline` and hands the result to :mod:`patron.cli.render`.
No business logic here: figures the CLI shows are computed in :mod:`patron.insights`.
"""

from __future__ import annotations

from typing import Annotated

import typer

import patron
from patron.cli import activation, data, demo, insights, models, reporting, run, service

__all__ = ["app", "main"]

app = typer.Typer(
    name="patron",
    help="patron: one customer view, profit CLV, segments and audiences, on DuckDB or Spark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _command in (
    data.init, data.generate, data.ingest, data.validate, data.resolve, data.rfm, data.features,
    models.backtest, models.fit, models.score, activation.segments, run.run,
    service.publish, data.erase, service.serve, data.export, insights.profile, reporting.report, demo.demo,
):
    app.command()(_command)


def _print_version(value: bool) -> None:
    """``--version``: print ``patron <version>`` and exit 0 before any command runs."""
    if value:
        typer.echo(f"patron {patron.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print patron's version and exit.")] = False,
) -> None:
    """patron: one customer view, profit CLV, segments and audiences, on DuckDB or Spark."""


app.add_typer(activation.audiences_app, name="audiences")
app.add_typer(service.keys_app, name="keys")


def main() -> None:  # pragma: no cover - entry point
    """Run the command line (``python -m patron.cli``)."""
    app(prog_name="patron")
