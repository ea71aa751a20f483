"""The profiled project (tests/conftest.py) as the insights tests read it: its warehouse, and its customer record
at the latest date with each customer's segments and 12-month CLV in pandas (the independent side of the checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from patron.config import Settings
from patron.engine import Warehouse, connect


@pytest.fixture(scope="module")
def wh(profiled_project: Path) -> Iterator[Warehouse]:
    with connect(Settings(project_dir=profiled_project, engine="duckdb")) as warehouse:
        yield warehouse


@pytest.fixture(scope="module")
def rows(wh: Warehouse) -> pd.DataFrame:
    """The customer record's rows at its latest date with each customer's segments and ``clv_12m``, in pandas."""
    car = wh.to_pandas(wh.table("car"))
    car = car[car["as_of_date"] == car["as_of_date"].max()]
    segments = wh.to_pandas(wh.table("segments"))[["customer_key", "value_tier", "rfm_segment"]]
    scores = wh.to_pandas(wh.table("scores"))[["customer_key", "clv_12m"]]
    return car.merge(segments, on="customer_key", how="left").merge(scores, on="customer_key", how="left")
