"""The whole chain, ingest to segments and publish, gives the same tables and documents on DuckDB and Spark."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from patron import pipeline
from patron.config import Settings
from patron.engine import connect
from patron.engine.spark import spark_session
from patron.serving.online import open_online_store
from patron.serving.reader import stored_doc
from tests.conftest import settings_for


@pytest.fixture(scope="module")
def retailer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retailer")
    pipeline.generate(400, out, seed=3, fmt="parquet")
    return out


#: Columns that legitimately differ between two runs: ids, clocks, and Splink's EM estimates
#: (its random sampling differs between engines; the clusters it produces must not).
RUN_SPECIFIC = {"model_id", "scored_at", "match_probability"}
COMPARED = {"identity_map": ("source", "customer_id"), "rfm": ("customer_key",), "car": ("customer_key",),
            "scores": ("customer_key",)}


def run_chain(settings: Settings, data: Path) -> tuple[dict[str, pd.DataFrame], dict[str, ibis.Schema]]:
    """The chain's compared tables (and the documents of the serving version it publishes), and the schema of
    every table it wrote."""
    results = pipeline.ingest(settings, [data])
    assert all(r.rejected == 0 for r in results), [(r.table, r.rejected) for r in results]
    pipeline.require_quality(pipeline.validate(settings))
    pipeline.resolve(settings)
    pipeline.summarise(settings)
    pipeline.features(settings)
    pipeline.backtest(settings)
    pipeline.fit(settings)
    pipeline.score(settings)
    pipeline.segments(settings)
    with connect(settings) as warehouse:
        frames = {name: warehouse.to_pandas(warehouse.table(name)).sort_values(list(key)).reset_index(drop=True)
                  for name, key in COMPARED.items()}
        schemas = {name: warehouse.table(name).schema() for name in warehouse.list_tables()
                   if not name.startswith(("__splink", "patron_"))}
    published = pipeline.publish(settings).manifest  # the service never needs Spark: Parquet and documents
    with open_online_store(settings) as store:
        docs = [stored_doc(store, published, key) for key in frames["scores"].customer_key]
    frames["published"] = pd.DataFrame({
        "customer_key": frames["scores"].customer_key, "clv_12m": [d["scores"]["clv_12m"] for d in docs],
        "tier": [d["segments"]["value_tier"] for d in docs], "orders": [len(d["orders"]) for d in docs],
        "published_customers": published.customers})
    return frames, schemas


def assert_same_frames(left: pd.DataFrame, right: pd.DataFrame, name: str) -> None:
    """Equal column by column: numbers to 1e-6 (absolute or relative; fitted-model outputs 1e-5), times as
    instants, text and NULLs exactly."""
    assert len(left) == len(right), name
    for column in left.columns:
        if column in RUN_SPECIFIC:
            continue
        a, b = left[column], right[column]
        if pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            a, b = pd.to_datetime(a, utc=True), pd.to_datetime(b, utc=True)
            assert ((a == b) | (a.isna() & b.isna())).all(), f"{name}.{column}"
        elif pd.api.types.is_numeric_dtype(a) or pd.api.types.is_numeric_dtype(b):  # Spark may give Decimals
            a, b = (pd.to_numeric(s.astype(object)).astype(float) for s in (a, b))
            # interval bounds come from the Hessian at the optimum, which float summation order
            # (engine-dependent) moves more than the estimates themselves: equal to 5 % (seen: 0.03 %
            # on most rows, more on a few small lower bounds; the cause is not yet pinned down)
            # scores come from models fitted on engine sums that differ in the 7th digit: L-BFGS-B stops
            # within ~1e-6 of the optimum, so a fitted output may differ by a few 1e-6 (seen: 1.4e-6)
            rtol = 5e-2 if column.endswith(("_lower", "_upper")) else 1e-5 if name == "scores" else 1e-6
            worst = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(a), 1e-9))) if len(a) else 0.0
            assert np.allclose(a, b, atol=1e-6, rtol=rtol, equal_nan=True), f"{name}.{column} worst {worst:.3g}"
        else:
            text = [s.astype(object).where(s.notna(), None).map(str) for s in (a, b)]
            assert (text[0] == text[1]).all(), f"{name}.{column}"


@pytest.mark.spark
def test_the_whole_chain_gives_the_same_tables_on_duckdb_and_spark(
    retailer_dir: Path, tmp_path: Path, spark_home: Path
) -> None:
    """ingest → validate → resolve → summarise → features → fit → score, once per engine."""
    duck, duck_schemas = run_chain(settings_for("duckdb", tmp_path / "duck"), retailer_dir)
    spark_settings = settings_for("spark", tmp_path, spark_home)
    try:
        spark, spark_schemas = run_chain(spark_settings, retailer_dir)
    finally:
        spark_session(spark_settings).sql(f"DROP DATABASE IF EXISTS {spark_settings.spark.database} CASCADE")
    assert len(duck["rfm"]) > 300 and duck["car"].shape[1] > 200
    for name in [*COMPARED, "published"]:
        assert_same_frames(duck[name], spark[name], "scores" if name == "published" else name)
    # one schema per table, whatever the engine: no decimals, 32-bit integers or lost time zones
    assert {"scores", "segments", "backtests", "car", "orders"} <= set(duck_schemas)
    assert set(duck_schemas) <= set(spark_schemas)
    differences = {f"{table}.{column}": (str(dtype), str(spark_schemas[table].get(column)))
                   for table, schema in duck_schemas.items() for column, dtype in schema.items()
                   if str(spark_schemas[table].get(column)).replace(", 6)", ")") != str(dtype).replace(", 6)", ")")}
    assert not differences
    assert duck_schemas["scores"]["scored_at"].timezone == "UTC"
    assert duck_schemas["scores"]["expected_margin"].is_float64()
