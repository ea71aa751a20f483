"""The demo: a generated retailer through every step, with the results to render.

It chains the steps of :mod:`~patron.pipeline.data`, :mod:`~patron.pipeline.modelling` and
:mod:`~patron.pipeline.activation` on a fresh warehouse; the charts are those the steps draw
(:func:`~patron.pipeline.modelling.summary_charts`, re-exported here with its queries).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from patron.config import CONFIG_NAME, Settings, load_settings, write_default_config
from patron.engine import reset_storage
from patron.pipeline.activation import audiences, segments
from patron.pipeline.data import (
    ResolveResult,
    SummaryResult,
    generate,
    ingest,
    require_quality,
    resolve,
    summarise,
    validate,
)
from patron.pipeline.modelling import (
    BacktestRun,
    FeaturesResult,
    ScoreRun,
    backtest,
    draw_charts,
    features,
    fit,
    frequency_distribution,
    monthly_activity,
    score,
)
from patron.pipeline.project import Reporter, create_api_key
from patron.pipeline.publishing import publish
from patron.pipeline.reporting import report_data
from patron.reports.report_html import write_html
from patron.reports.report_workbook import write_workbook
from patron.scoring.model_store import FittedValueModels
from patron.serving.publish import PublishResult
from patron.transforms.ingest import IngestResult
from patron.transforms.quality import QualityReport

__all__ = ["DemoResult", "draw_charts", "frequency_distribution", "monthly_activity", "reset_warehouse", "run_demo"]


@dataclass
class DemoResult:
    """Everything the demo did, for the interface to render."""

    project_dir: Path
    currency: str
    ingest: list[IngestResult]
    quality: QualityReport
    identity: ResolveResult
    summary: SummaryResult
    features: FeaturesResult
    backtest: BacktestRun
    models: FittedValueModels
    scores: ScoreRun
    segments: dict[str, pd.DataFrame]
    audiences: pd.DataFrame
    charts: list[Path]
    published: PublishResult
    api_key: str  # an admin key made for the demo, to try `patron serve`
    reports: tuple[Path, ...] = ()  # the workbook and the HTML report (reports/patron.xlsx, reports/patron.html)


def reset_warehouse(settings: Settings) -> None:
    """Remove the project's embedded warehouse and serving layer so a demo starts from nothing (a Spark catalog and
    a Redis online store are kept)."""
    reset_storage(settings)
    if settings.serve.online_store == "embedded":
        shutil.rmtree(settings.serving_dir, ignore_errors=True)


def run_demo(project_dir: Path, *, customers: int = 100_000, seed: int = 42,
             reporter: Reporter | None = None) -> DemoResult:
    """Generate a sample retailer, ingest it (with a few bad rows), validate and summarise."""
    reporter = reporter or Reporter()
    project_dir.mkdir(parents=True, exist_ok=True)
    if not (project_dir / CONFIG_NAME).exists():
        write_default_config(project_dir)
    settings = load_settings(project_dir)
    reset_warehouse(settings)
    data_dir = project_dir / "data"
    with reporter.task(f"Generating {customers:,} customers", total=1) as advance:
        generate(customers, data_dir, seed=seed, fmt="csv", dirty_rows=2)
        advance(1)
    results = ingest(settings, [data_dir], reporter=reporter)
    with reporter.task("Validating", total=1) as advance:
        report = validate(settings)
        advance(1)
    require_quality(report)
    identity = resolve(settings, reporter=reporter)
    summary = summarise(settings, reporter=reporter)
    record = features(settings, reporter=reporter)
    checked = backtest(settings, reporter=reporter, charts=True)
    models = fit(settings, reporter=reporter)  # the backtest's champion, read back from table backtests
    scored = score(settings, reporter=reporter, charts=True)
    with reporter.task("Segments and audiences", total=2) as advance:
        segment_sizes = segments(settings)
        advance(1)
        audience_sizes = audiences(settings)
        advance(1)
    charts = scored.charts + checked.charts  # the summary charts `patron score` draws, then the backtest's
    published = publish(settings, reporter=reporter)
    views = report_data(settings, reporter=reporter)
    with reporter.task("Writing the workbook and the HTML report", total=2) as advance:
        workbook = write_workbook(views, project_dir / "reports" / "patron.xlsx")
        advance(1)
        page = write_html(views, project_dir / "reports" / "patron.html")
        advance(1)
    return DemoResult(project_dir, settings.reporting_currency, results, report, identity, summary, record,
                      checked, models, scored, segment_sizes, audience_sizes, charts, published,
                      create_api_key(settings, "admin"), (workbook, page))
