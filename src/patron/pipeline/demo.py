"""The demo: a generated retailer through every step, with the results to render.

It chains the steps of :mod:`~patron.pipeline.data`, :mod:`~patron.pipeline.modelling` and
:mod:`~patron.pipeline.activation` on a fresh warehouse, then draws the summary charts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd

from patron.config import CONFIG_NAME, Settings, load_settings, write_default_config
from patron.engine import Warehouse, reset_storage
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
from patron.pipeline.modelling import BacktestRun, FeaturesResult, ScoreRun, backtest, features, fit, score
from patron.pipeline.project import Reporter, create_api_key, open_warehouse
from patron.pipeline.publishing import publish
from patron.reports import plotting
from patron.scoring.model_store import FittedValueModels
from patron.serving.publish import PublishResult
from patron.tables import ORDER_VALUES, RFM_HISTOGRAM
from patron.transforms.ingest import IngestResult
from patron.transforms.quality import QualityReport


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


def monthly_activity(warehouse: Warehouse) -> ir.Table:
    """Orders, revenue and GP2 per calendar month and channel, from ``order_values``."""
    values = warehouse.table(ORDER_VALUES)
    month = values.ordered_at.truncate("M").name("month")
    return (
        values.group_by([month, values.channel])
        .aggregate(orders=values.count(), revenue=values.revenue.sum(), gp2=values.gp2.sum())
        .order_by(["month", "channel"])
    )


def frequency_distribution(warehouse: Warehouse) -> ir.Table:
    """Customers per number of repeat purchases, from the RFM histogram."""
    hist = warehouse.table(RFM_HISTOGRAM)
    return hist.group_by("frequency").aggregate(customers=hist.n_customers.sum()).order_by("frequency")


def draw_charts(settings: Settings, out_dir: Path, *, deciles: pd.DataFrame | None = None) -> list[Path]:
    """The summary charts of a project: monthly activity, repeat purchases, CLV by decile."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings) as warehouse:
        monthly = warehouse.to_pandas(monthly_activity(warehouse))
        frequency = warehouse.to_pandas(frequency_distribution(warehouse))
    return [
        plotting.monthly_activity_chart(monthly, out_dir / "monthly_activity.png",
                                        currency=settings.reporting_currency),
        plotting.repeat_purchases_chart(frequency, out_dir / "repeat_purchases.png"),
        *([] if deciles is None else [plotting.clv_decile_chart(
            deciles, out_dir / "clv_deciles.png", currency=settings.reporting_currency,
            horizon=max(settings.model.horizons_months))]),
    ]


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
    checked = backtest(settings, reporter=reporter)
    models = fit(settings, reporter=reporter)  # the backtest's champion, read back from table backtests
    scored = score(settings, reporter=reporter)
    with reporter.task("Segments and audiences", total=2) as advance:
        segment_sizes = segments(settings)
        advance(1)
        audience_sizes = audiences(settings)
        advance(1)
    with reporter.task("Drawing charts", total=1) as advance:
        charts = draw_charts(settings, project_dir / "reports", deciles=scored.deciles) + checked.charts
        advance(1)
    published = publish(settings, reporter=reporter)
    return DemoResult(project_dir, settings.reporting_currency, results, report, identity, summary, record,
                      checked, models, scored, segment_sizes, audience_sizes, charts, published,
                      create_api_key(settings, "admin"))
