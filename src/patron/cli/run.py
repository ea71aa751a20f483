"""The ``run`` command: the whole pipeline from ``patron.toml``, one run at a time (docs/running.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, errors, progress_reporter, project_dir
from patron.cli.render import run_table, shown
from patron.config import load_settings
from patron.pipeline.modelling import charts_since

__all__ = ["run"]

STEP_NAMES = ", ".join(pipeline.STEPS)


def run(
    steps: Annotated[str | None, typer.Option(help=f"Only these steps, comma-separated, of: {STEP_NAMES}.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Every step from this one on.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Run the pipeline from patron.toml: ingest, validate, resolve, summarise, features, backtest when due,
    fit, score, segments, the audience files of run.exports and publish. Exits 1 on a blocking data-quality failure."""
    with errors():
        settings = load_settings(project_dir(project))
        chosen = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
        started = time.time()
        with progress_reporter() as reporter:
            result = pipeline.run(settings, steps=chosen, start=start, reporter=reporter)
        charts = charts_since(settings, started)  # the backtest and score steps draw them
    console.print(run_table(result))
    for chart in charts:
        console.print(f"Chart: {shown(chart)}")
