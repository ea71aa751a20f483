"""The headline figures of patron.insights.kpis, on small hand-made results."""

from __future__ import annotations

import pandas as pd
import pytest

from patron.insights.kpis import clv_by_horizon, fully_rejected, top_decile_share
from patron.transforms.ingest import IngestResult


def deciles(totals: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"decile": range(1, len(totals) + 1), "customers": 10, "total": totals})


def test_top_decile_share_is_decile_one_over_the_total() -> None:
    frame = deciles([500.0, 200.0, 100.0, 50.0, 50.0, 40.0, 30.0, 20.0, 10.0, 0.0])
    assert top_decile_share(frame) == pytest.approx(0.5)
    shuffled = frame.sample(frac=1.0, random_state=0)  # the order of the rows does not matter
    assert top_decile_share(shuffled) == pytest.approx(0.5)
    assert isinstance(top_decile_share(frame), float)


def test_top_decile_share_without_value_is_none() -> None:
    assert top_decile_share(deciles([])) is None
    assert top_decile_share(deciles([0.0] * 10)) is None


def test_clv_by_horizon_keeps_only_clv_totals_in_order() -> None:
    totals = {"clv_3m": 10.0, "clv_12m": 30.0, "historic_gp2": 99.0, "mean_p_alive": 0.4, "clv_36m": 70.0}
    assert list(clv_by_horizon(totals).items()) == [("3m", 10.0), ("12m", 30.0), ("36m", 70.0)]
    assert clv_by_horizon({"historic_gp2": 1.0}) == {}


def test_fully_rejected_files_are_those_with_nothing_loaded() -> None:
    bad = IngestResult("orders", "orders.csv", rows_read=3, rejected=3)
    partly = IngestResult("orders", "orders_2.csv", rows_read=3, loaded=2, rejected=1)
    skipped = IngestResult("customers", "customers.csv", rejected=2, skipped_file=True)
    assert fully_rejected([partly, bad, skipped]) == [bad]
    assert fully_rejected([]) == []
