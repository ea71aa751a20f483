"""Commands that model customer value: backtest, fit and score."""

from __future__ import annotations

from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, errors, parse_date, progress_reporter, project_dir
from patron.cli.render import backtest_table, models_table, scores_table, shown, tables_line
from patron.config import load_settings

__all__ = ["backtest", "fit", "score"]


def backtest(
    calibration_end: Annotated[str | None, typer.Option(help="Last calibration day, YYYY-MM-DD.")] = None,
    holdout_end: Annotated[str | None, typer.Option(help="Last holdout day; default: the observation end.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Fit the purchase models on a calibration period and measure them on the holdout."""
    with errors():
        settings = load_settings(project_dir(project))
        start = parse_date(calibration_end) if calibration_end else None
        end = parse_date(holdout_end) if holdout_end else None
        with progress_reporter() as reporter:
            run = pipeline.backtest(settings, calibration_end=start, holdout_end=end, reporter=reporter,
                                       charts=True)
    console.print(backtest_table(run, settings.reporting_currency))
    for chart in run.charts:
        console.print(f"Chart: {shown(chart)}")


def fit(
    model: Annotated[str | None, typer.Option(
        help="bg_nbd, pareto_nbd or mbg_nbd; default: the last backtest's champion, else patron.toml.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Fit the purchase, spend and margin models and store them as the champion."""
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            models = pipeline.fit(settings, purchase_model=model, reporter=reporter)
    console.print(models_table(models))


def score(
    model_id: Annotated[str | None, typer.Option(help="Stored models to use; default: the champion.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Score every customer: p_alive, expected orders and value, CLV with an interval per horizon."""
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            run = pipeline.score(settings, model_id=model_id, reporter=reporter, charts=True)
    console.print(scores_table(run, settings.reporting_currency))
    for chart in run.charts:
        console.print(f"Chart: {shown(chart)}")
    console.print(tables_line([(run.result.table, run.result.customers)]))
