"""The demo: a generated retailer through every step, from a warehouse reset to nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from patron import pipeline
from patron.config import Settings
from patron.engine import connect


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = pipeline.run_demo(tmp_path / "demo", customers=500, seed=5)
    assert result.summary.customers > 300
    assert sum(r.rejected for r in result.ingest) > 0  # the demo injects bad rows on purpose
    assert result.quality.passed
    for chart in result.charts:
        assert chart.exists() and chart.stat().st_size > 10_000
    assert {chart.name for chart in result.charts} >= {"monthly_activity.png", "repeat_purchases.png",
                                                       "clv_deciles.png"}
    assert result.backtest.result.champion in result.backtest.result.models
    deciles = result.scores.deciles
    assert deciles["decile"].tolist() == list(range(1, 11))
    assert deciles["mean"].is_monotonic_decreasing  # decile 1 holds the most valuable customers
    assert deciles["customers"].sum() == result.scores.result.customers
    assert [p.relative_to(tmp_path / "demo").as_posix() for p in result.reports] == ["reports/patron.xlsx",
                                                                                     "reports/patron.html"]
    assert all(p.stat().st_size > 50_000 for p in result.reports)


def test_reset_removes_the_warehouse_and_its_log(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write("kept", pd.DataFrame({"a": [1, 2]}))
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    wal.write_bytes(b"")  # as a crashed run leaves it
    pipeline.reset_warehouse(settings)
    assert not settings.warehouse_path.exists() and not wal.exists()
    with connect(settings) as warehouse:
        assert not warehouse.has_table("kept")
