"""The ``demo`` command: a sample retailer through the whole pipeline, every step's result rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, errors, progress_reporter
from patron.cli.render import (
    backtest_table,
    features_line,
    frame_table,
    identity_table,
    ingest_table,
    models_table,
    quality_table,
    scores_table,
    shown,
    strategy_grid_table,
    summary_table,
)

__all__ = ["demo"]


def demo(
    customers: Annotated[int, typer.Option(min=100, help="Persons in the sample retailer.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    project: ProjectOption = Path("demo"),
) -> None:
    """Sample retailer → ingest → validate → resolve → summary → backtest → fit → score → publish, with a report."""
    with errors(), progress_reporter() as reporter:
        result = pipeline.run_demo(project, customers=customers, seed=seed, reporter=reporter)
    console.print(ingest_table(result.ingest))
    console.print(quality_table(result.quality))
    console.print(identity_table(result.identity))
    console.print(summary_table(result.summary, result.currency))
    console.print(features_line(result.features))
    console.print(backtest_table(result.backtest, result.currency))
    console.print(models_table(result.models))
    console.print(scores_table(result.scores, result.currency))
    console.print(frame_table(result.segments["value_tier"], title="Customers by value tier"))
    console.print(strategy_grid_table(result.segments["strategy_cell"]))
    sizes = result.audiences.drop(columns=["description"])
    console.print(frame_table(sizes, title="Audiences (members: with marketing consent)"))
    for chart in result.charts:
        console.print(f"Chart: {shown(chart)}")
    console.print(f"Published serving version {result.published.manifest.version} "
                  f"({result.published.manifest.customers:,} customers).")
    for path in result.reports:
        console.print(f"Report: {shown(path)}")
    console.print(f"[bold green]Demo project ready in {project}[/] — try `patron export rfm "
                  f"--project {project} --out rfm.csv`, or the API: `patron serve --project {project}`, then "
                  f"`curl -H 'X-API-Key: {result.api_key}' http://127.0.0.1:8000/health` (docs at "
                  "http://127.0.0.1:8000/docs; the key is an admin key made for this demo).", soft_wrap=True)
    console.print(f"[bold]The pages:[/] run `patron serve --project {project}`, open http://127.0.0.1:8000/app/ "
                  f"and log in with the key {result.api_key} (admin: every page).", soft_wrap=True)
