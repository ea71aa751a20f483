"""The chain generate → ingest → validate → summarise, and the same results on both engines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from patron import pipeline
from patron.config import Settings
from patron.engine import connect
from tests.conftest import settings_for


@pytest.fixture(scope="module")
def retailer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retailer")
    pipeline.generate(400, out, seed=3, fmt="parquet")
    return out


def run_chain(settings: Settings, data: Path) -> pd.DataFrame:
    results = pipeline.ingest(settings, [data])
    assert all(r.rejected == 0 for r in results), [(r.table, r.rejected) for r in results]
    report = pipeline.validate(settings)
    pipeline.require_quality(report)
    pipeline.summarise(settings)
    with connect(settings) as warehouse:
        rfm = warehouse.to_pandas(warehouse.table(pipeline.RFM))
    return rfm.sort_values("customer_key").reset_index(drop=True)


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_customer_summary(
    retailer_dir: Path, tmp_path: Path, spark_home: Path
) -> None:
    duck = run_chain(settings_for("duckdb", tmp_path / "duck"), retailer_dir)
    spark_settings = settings_for("spark", tmp_path, spark_home)
    try:
        spark = run_chain(spark_settings, retailer_dir)
    finally:
        session = connect(spark_settings).con._session
        session.sql(f"DROP DATABASE IF EXISTS {spark_settings.spark.database} CASCADE")
    assert len(duck) > 300
    pd.testing.assert_frame_equal(duck, spark[duck.columns], check_dtype=False, atol=1e-6)


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = pipeline.run_demo(tmp_path / "demo", customers=500, seed=5)
    assert result.summary.customers > 300
    assert sum(r.rejected for r in result.ingest) > 0  # the demo injects bad rows on purpose
    assert result.quality.passed
    for chart in result.charts:
        assert chart.exists() and chart.stat().st_size > 10_000
    assert result.backtest.result.champion in result.backtest.result.models
    deciles = result.scores.deciles
    assert deciles["decile"].tolist() == list(range(1, 11))
    assert deciles["mean"].is_monotonic_decreasing  # decile 1 holds the most valuable customers
    assert deciles["customers"].sum() == result.scores.result.customers
