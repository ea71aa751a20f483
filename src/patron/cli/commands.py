"""The ``patron`` Typer app: every command registered, in the order ``patron --help`` lists them.

The commands live in grouped modules (data, models, activation, service, demo); each parses its
arguments, calls :mod:`patron.pipeline` and hands the result to :mod:`patron.cli.render`.
No business logic here: figures the CLI shows are computed in :mod:`patron.insights`.
"""

from __future__ import annotations

import typer

from patron.cli import activation, data, demo, models, run, service

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
    service.publish, data.erase, service.serve, data.export, demo.demo,
):
    app.command()(_command)
app.add_typer(activation.audiences_app, name="audiences")
app.add_typer(service.keys_app, name="keys")


def main() -> None:  # pragma: no cover - entry point
    """Run the command line (``python -m patron.cli``)."""
    app(prog_name="patron")
