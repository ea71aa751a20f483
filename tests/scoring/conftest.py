"""What the scoring tests share, built once for the package: a generated retailer scored, and a synthetic fit."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from patron import pipeline
from patron.config import ModelSettings, Settings
from patron.engine import Warehouse, connect
from patron.scoring.batch import score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.model_store import FittedValueModels, save_models
from tests.scoring._synthetic import synthetic_rfm


@pytest.fixture(scope="package")
def scored_retailer(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, Warehouse, FittedValueModels]]:
    """A generated retailer through ingest and summarise (DuckDB), its models fitted and saved."""
    folder = tmp_path_factory.mktemp("scoring")
    pipeline.generate(1200, folder / "data", seed=11, fmt="parquet")
    settings = Settings(project_dir=folder / "project", engine="duckdb")
    pipeline.ingest(settings, [folder / "data"])
    pipeline.summarise(settings)
    with connect(settings) as warehouse:
        models = fit_value_models(warehouse, settings=settings)
        save_models(warehouse, models)
        score_customers(warehouse, models, settings=settings)
        yield settings, warehouse, models


@pytest.fixture(scope="package")
def synthetic_models(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, FittedValueModels]:
    """A synthetic ``rfm`` of 1,500 BG/NBD customers (weeks) and the revenue-basis models fitted on it."""
    rfm = synthetic_rfm(1_500, seed=1)
    settings = Settings(project_dir=tmp_path_factory.mktemp("synthetic"), engine="duckdb",
                        model=ModelSettings(value="revenue"))
    with connect(settings) as warehouse:
        warehouse.write("rfm", rfm)
        return rfm, fit_value_models(warehouse, settings=settings)
