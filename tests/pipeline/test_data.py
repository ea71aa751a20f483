"""The data steps on a small export: files found and ordered, loaded, resolved and summarised, with notes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from patron import pipeline
from patron.config import Settings
from patron.errors import PatronError
from patron.pipeline.data import input_tables

ORDERS = """order_id,source,customer_id,ordered_at,channel,country,currency
1,web,a,2024-01-05,online,DE,EUR
2,web,a,2024-03-01,online,DE,EUR
3,web,b,2024-02-10,online,DE,EUR
4,web,c,2024-04-20,online,DE,EUR
5,web,c,2024-06-30,online,DE,EUR
"""
LINES = """order_id,line_no,sku,quantity,unit_price
1,1,R1,1,100.0
2,1,R2,2,40.0
3,1,R1,1,100.0
4,1,N1,1,250.0
5,1,R2,1,40.0
"""


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """``orders.csv`` and ``order_lines.csv`` of three customers, nothing else."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "order_lines.csv").write_text(LINES, encoding="utf-8")
    (folder / "orders.csv").write_text(ORDERS, encoding="utf-8")
    return folder


def test_a_folder_gives_its_contract_files_reference_tables_first(export: Path) -> None:
    (export / "customers.csv").write_text("customer_id,source\n", encoding="utf-8")
    for skipped in ("truth_customers.csv", "notes.csv", "~$orders.xlsx", "readme.md"):
        (export / skipped).write_text("x\n", encoding="utf-8")
    files = pipeline.expand_paths([export])
    assert [f.name for f in files] == ["customers.csv", "orders.csv", "order_lines.csv"]
    with pytest.raises(PatronError, match="no such file or folder"):
        pipeline.expand_paths([export / "nothere"])


def test_ingest_resolve_and_summarise_say_what_they_went_without(export: Path, tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path / "project", engine="duckdb")
    reporter = pipeline.Reporter()
    results = pipeline.ingest(settings, [export], reporter=reporter)
    assert {r.table: r.loaded for r in results} == {"orders": 5, "order_lines": 5}
    pipeline.require_quality(pipeline.validate(settings))
    resolved = pipeline.resolve(settings, reporter=reporter)
    assert resolved.customers == 3 and sum(resolved.orders_by_method.values()) == 5
    summary = pipeline.summarise(settings, reporter=reporter)
    assert summary.observation_end == dt.date(2024, 6, 30)  # the last order's day
    assert (summary.customers, summary.orders) == (3, 5)
    assert summary.stats["repeat_share"] == pytest.approx(2 / 3)
    assert summary.stats["total_revenue"] == pytest.approx(570.0)  # 100 + 2 x 40 + 100 + 250 + 40
    notes = " | ".join(reporter.notes)
    for expected in ("no returns table", "no order_costs table", "unit_cost is empty", "discount is empty"):
        assert expected in notes, (expected, notes)
    earlier = pipeline.summarise(settings, observation_end=dt.date(2024, 3, 31))
    assert (earlier.observation_end, earlier.orders) == (dt.date(2024, 3, 31), 3)


def test_a_step_without_orders_says_to_ingest(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with pytest.raises(PatronError, match="run `patron ingest` first"):
        pipeline.resolve(settings)
    with pipeline.open_warehouse(settings) as warehouse, pytest.raises(PatronError, match="no orders"):
        input_tables(warehouse, ("orders", "order_lines"), pipeline.Reporter())
