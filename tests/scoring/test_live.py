"""Live scoring of one customer is the batch's maths on their rows alone: the same rfm and scores rows, to 1e-9."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from patron.config import ModelSettings, Settings
from patron.engine import Warehouse, connect
from patron.errors import NotFound, Unprocessable
from patron.scoring.live import (
    customer_inputs,
    customer_scores,
    customer_summary,
    end_after,
    latest_day,
    score_posted,
    score_summaries,
)
from patron.scoring.model_store import FittedValueModels, load_models
from patron.transforms.observation import observation_end
from patron.transforms.seasonality import Seasonality, stored_seasonality

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def scored(scored_project: Path, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[Settings, Warehouse, FittedValueModels]]:
    """A copy of the run's scored retailer (on a seasonal clock): batch scores to compare with."""
    settings = Settings(project_dir=tmp_path_factory.mktemp("live"), engine="duckdb")
    shutil.copy(scored_project, settings.warehouse_path)
    with connect(settings) as warehouse:
        yield settings, warehouse, load_models(warehouse)


def repeat_buyers(warehouse: Warehouse, n: int = 3) -> list[str]:
    rfm = warehouse.table("rfm")
    chosen = rfm.filter(rfm.frequency >= 2).order_by("customer_key").limit(n)
    return [str(k) for k in warehouse.to_pandas(chosen.select("customer_key")).customer_key]


def one(warehouse: Warehouse, name: str, key: str) -> pd.Series:
    table = warehouse.table(name)
    return warehouse.to_pandas(table.filter(table.customer_key == key)).iloc[0]


def assert_same(live: pd.Series, batch: pd.Series, columns: list[str]) -> None:
    for column in columns:
        if isinstance(batch[column], float):
            assert live[column] == pytest.approx(batch[column], rel=1e-9, abs=1e-12), column
        else:
            assert live[column] == batch[column], column


def test_one_customers_rows_rescore_as_the_batch_did(scored: tuple[Settings, Warehouse, FittedValueModels]) -> None:
    settings, warehouse, models = scored
    clock = stored_seasonality(warehouse)
    assert clock is not None and not clock.is_flat  # the generated two years are summarised on a seasonal clock
    end = observation_end(warehouse, settings)
    values = warehouse.table("order_values")
    for key in repeat_buyers(warehouse):
        summary = customer_summary(values.filter(values.customer_key == key), settings, end, clock=clock)
        rfm_row = warehouse.to_pandas(summary).iloc[0]
        batch_rfm = one(warehouse, "rfm", key)
        assert_same(rfm_row, batch_rfm, ["frequency", "recency", "T", "monetary_revenue", "total_gp2", "market",
                                         "n_orders"])
        live = warehouse.to_pandas(score_summaries(warehouse, models, settings, summary, end, clock=clock)).iloc[0]
        batch = one(warehouse, "scores", key)
        numeric = [c for c in batch.index if isinstance(batch[c], float)]
        assert len(numeric) >= 20
        assert_same(live, batch, [*numeric, "model_id", "value_basis"])
        assert live["expected_next_order_date"] == batch["expected_next_order_date"]


def in_memory_scores(warehouse: Warehouse, models: FittedValueModels, settings: Settings, rfm_row: pa.Table,
                     end: dt.date, clock: Seasonality | None) -> pd.Series:
    """The fast path's maths: the row's inputs computed in Python, joined in the engine."""
    rows, spend = customer_inputs(models, settings, rfm_row, end, clock=clock)
    expr = customer_scores(ibis.memtable(rfm_row), ibis.memtable(rows), ibis.memtable(spend), models, settings,
                           end)
    return warehouse.to_pandas(expr).iloc[0]


@pytest.mark.parametrize("on_clock", [True, False])
def test_the_inputs_of_a_row_at_hand_score_as_the_engine_query(
    scored: tuple[Settings, Warehouse, FittedValueModels], on_clock: bool
) -> None:
    settings, warehouse, models = scored
    clock = stored_seasonality(warehouse) if on_clock else None
    end = observation_end(warehouse, settings)
    values = warehouse.table("order_values")
    key = repeat_buyers(warehouse, 1)[0]
    summary = customer_summary(values.filter(values.customer_key == key), settings, end, clock=clock)
    rfm_row = pa.Table.from_batches(list(warehouse.batches(summary)))
    assert ("market" in rfm_row.column_names) == on_clock
    reference = warehouse.to_pandas(score_summaries(warehouse, models, settings, summary, end, clock=clock)).iloc[0]
    fast = in_memory_scores(warehouse, models, settings, rfm_row, end, clock)
    numeric = [c for c in reference.index if isinstance(reference[c], float)]
    assert_same(fast, reference, numeric)
    assert fast["expected_next_order_date"] == reference["expected_next_order_date"]


def test_a_posted_summary_and_its_history_score_alike(scored: tuple[Settings, Warehouse, FittedValueModels]) -> None:
    settings, warehouse, models = scored
    orders: list[dict[str, Any]] = [{"ordered_at": "2024-01-01T09:00:00Z", "revenue": 40.0, "gp2": 10.0},
                                    {"ordered_at": "2024-01-15T18:00:00+02:00", "revenue": 60.0, "gp2": 30.0}]
    end = dt.date(2024, 3, 11)
    summary, scores = score_posted(warehouse, models, settings, end, orders=orders, market="DE")
    assert summary.frequency[0] == 1 and summary.market[0] in ("DE", "ALL") and len(scores) == 1
    posted = {c: summary[c][0] for c in ("frequency", "recency", "T", "monetary_revenue", "total_revenue",
                                         "total_gp2")}
    _, direct = score_posted(warehouse, models, settings, end, summary=posted, market="DE")
    for column in ("p_alive", "expected_orders_12m", "clv_12m"):
        assert direct[column][0] == pytest.approx(scores[column][0], rel=1e-12), column
    with pytest.raises(Unprocessable, match="no posted order lies on or before observation_end 2020-01-01"):
        score_posted(warehouse, models, settings, dt.date(2020, 1, 1), orders=orders)


def test_the_observation_end_after_a_known_last_order(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    configured = replace(settings, model=ModelSettings(observation_end="2025-12-31"))
    assert latest_day(None, "2026-02-01T23:30:00-02:00", dt.date(2026, 1, 5), pd.Timestamp("2026-01-31")) \
        == dt.date(2026, 2, 2)
    assert latest_day(None, pd.NaT) is None
    with connect(settings) as warehouse:
        assert end_after(warehouse, settings, dt.date(2026, 2, 2), now=NOW) == dt.date(2026, 2, 2)
        assert end_after(warehouse, settings, dt.date(2026, 5, 1), now=NOW) == dt.date(2026, 3, 1)  # not after today
        assert end_after(warehouse, configured, dt.date(2026, 2, 2), now=NOW) == dt.date(2025, 12, 31)
        assert end_after(warehouse, configured, None, now=NOW) == dt.date(2025, 12, 31)  # reads nothing
        warehouse.write("order_values", pd.DataFrame({"ordered_at": pd.to_datetime([], utc=True)}))
        with pytest.raises(NotFound, match="no orders"):
            end_after(warehouse, settings, None, now=NOW)  # none known: the warehouse is read
