"""The whole chain on data patron did not make: bare exports of a real retailer's log.

The CDNOW sample (Fader & Hardie; ``../shared/data/cdnow``) is written the way a real
export looks: only ``orders`` and ``order_lines``, one source, no personal data. Every
command from ingest to audience export must run through it, say what it went without,
and give every customer a finite score. The same data with every optional table present
but empty must give the same scores.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from patron import pipeline
from patron.cli.commands import app
from patron.config import Settings, load_settings, write_default_config
from patron.contract import CONTRACT
from patron.engine import connect
from patron.engine.spark import spark_session
from tests.conftest import settings_for

CDNOW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdnow"
runner = CliRunner(env={"COLUMNS": "200"})

pytestmark = pytest.mark.skipif(not (CDNOW / "CDNOW_sample.txt").exists(), reason="../shared/data/cdnow missing")


def cdnow_sample() -> pd.DataFrame:
    """The CDNOW sample log: one row per purchase (2,357 customers, 6,919 rows)."""
    return pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                       names=["master_id", "customer_id", "date", "cds", "dollars"],
                       dtype={"master_id": str, "customer_id": str, "date": str})


def write_bare_export(folder: Path) -> pd.DataFrame:
    """``orders.csv`` and ``order_lines.csv`` of the CDNOW sample, nothing else."""
    log = cdnow_sample()
    log["order_id"] = [f"T{i:05d}" for i in range(len(log))]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "order_id": log.order_id, "source": "cdnow", "customer_id": log.customer_id,
        "ordered_at": pd.to_datetime(log.date, format="%Y%m%d").dt.strftime("%Y-%m-%d"),
        "channel": "online", "country": "US", "currency": "USD",
    }).to_csv(folder / "orders.csv", index=False)
    pd.DataFrame({
        "order_id": log.order_id, "line_no": 1, "sku": "CD", "quantity": log.cds,
        "unit_price": (log.dollars / log.cds).round(4),
    }).to_csv(folder / "order_lines.csv", index=False)
    return log


def write_empty_optional_tables(folder: Path) -> None:
    """Every optional contract table as a header-only CSV, as an export of empty tables looks."""
    for name, contract in CONTRACT.items():
        if name not in ("orders", "order_lines"):
            (folder / f"{name}.csv").write_text(",".join(contract.column_names) + "\n", encoding="utf-8")


def project_for(folder: Path, engine: str = "duckdb", spark_home: Path | None = None) -> Settings:
    settings = settings_for(engine, folder, spark_home)
    return replace(settings, reporting_currency="USD")


def run_everything(settings: Settings, data: Path, out: Path) -> dict[str, object]:
    """ingest → validate → resolve → rfm → features → backtest → fit → score → segments → audiences → export."""
    reporter = pipeline.Reporter()
    ingested = pipeline.ingest(settings, [data], reporter=reporter)
    pipeline.require_quality(pipeline.validate(settings))
    resolved = pipeline.resolve(settings, reporter=reporter)
    summary = pipeline.summarise(settings, reporter=reporter)
    record = pipeline.features(settings, reporter=reporter)
    backtest = pipeline.backtest(settings, reporter=reporter)
    models = pipeline.fit(settings, reporter=reporter)
    scores = pipeline.score(settings, reporter=reporter)
    segments = pipeline.segments(settings)
    audiences = pipeline.audiences(settings)
    exported = pipeline.export_audience(settings, "value_lookalike_seed", "csv", out / "seed.csv")
    rows = pipeline.export_table(settings, "scores", out / "scores.parquet")
    with connect(settings) as warehouse:
        table = warehouse.to_pandas(warehouse.table("scores"))
        car = warehouse.to_pandas(warehouse.table("car"))
    return {"notes": reporter.notes, "ingested": ingested, "resolved": resolved, "summary": summary,
            "record": record, "backtest": backtest, "models": models, "scores": scores, "segments": segments,
            "audiences": audiences, "exported": exported, "rows": rows, "table": table, "car": car}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("bare")
    write_bare_export(folder / "data")
    return run_everything(project_for(folder / "project"), folder / "data", folder)


def test_a_bare_export_goes_through_every_step(bare: dict[str, object]) -> None:
    log = cdnow_sample()
    ingested = {r.table: r for r in bare["ingested"]}
    assert set(ingested) == {"orders", "order_lines"}
    assert ingested["orders"].loaded == len(log) == 6919 and ingested["orders"].rejected == 0
    assert bare["resolved"].customers == 2357  # one person per customer id: no records to merge
    assert bare["summary"].customers == 2357
    assert bare["record"].customers == 2357
    table = bare["table"]
    assert len(table) == 2357 == bare["rows"]
    numeric = table.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy(dtype=float)).all(), numeric.columns[~np.isfinite(numeric).all()].tolist()
    assert table.p_alive.between(0, 1).all() and (table.clv_12m >= 0).all()
    # without cost data the kept margin is the whole revenue, for everyone
    assert np.allclose(table.expected_margin, 1.0)
    # no consent data: everyone counts as not consenting, so a marketing export carries no one
    exported = bare["exported"]
    assert exported.rows == 0 and exported.excluded_no_consent > 200
    sizes = bare["audiences"].set_index("name")
    assert (sizes.matched > 0).all() and (sizes.members == 0).all()


def test_every_step_says_what_it_went_without(bare: dict[str, object]) -> None:
    notes = " | ".join(bare["notes"])
    for expected in ("no returns table", "no order_costs table", "no products table", "no engagement events",
                     "no customer records", "unit_cost is empty"):
        assert expected in notes, (expected, notes)
    assert len(bare["notes"]) == len(set(bare["notes"]))  # each said once


def test_features_that_need_a_missing_table_are_null_and_the_rest_are_not(bare: dict[str, object]) -> None:
    car = bare["car"]
    assert car["lifecycle_stage"].notna().all() and (car["lifecycle_stage"] != "unknown").all()
    assert car["orders_all"].min() >= 1
    assert car["opens_all"].isna().all()  # engagement: no events table, so unknown rather than 0
    assert car["units_returned_all"].isna().all() and car["return_rate_units"].isna().all()
    stages = set(car["lifecycle_stage"])
    assert stages <= {"new", "active", "lapsing", "lapsed", "reactivated"} and "lapsed" in stages


def test_empty_optional_tables_change_nothing(bare: dict[str, object], tmp_path: Path) -> None:
    write_bare_export(tmp_path / "data")
    write_empty_optional_tables(tmp_path / "data")
    result = run_everything(project_for(tmp_path / "project"), tmp_path / "data", tmp_path)
    ingested = {r.table for r in result["ingested"]}
    assert ingested == set(CONTRACT)  # every table ingested, the optional ones empty
    assert "no returns table: GP2 counts no refunds, and return features are NULL" in result["notes"]
    left = bare["table"].sort_values("customer_key").reset_index(drop=True)
    right = result["table"].sort_values("customer_key").reset_index(drop=True)
    assert left.customer_key.tolist() == right.customer_key.tolist()
    assert np.allclose(left.clv_12m, right.clv_12m, rtol=1e-6)  # the same fit, to the optimiser's tolerance


def test_the_bare_export_through_the_command_line_never_shows_a_traceback(tmp_path: Path) -> None:
    write_bare_export(tmp_path / "data")
    project = tmp_path / "shop"
    write_default_config(project)
    config = project / "patron.toml"
    config.write_text(config.read_text().replace('currency = "EUR"', 'currency = "USD"'))
    assert load_settings(project).reporting_currency == "USD"
    commands = [["ingest", str(tmp_path / "data")], ["validate"], ["resolve"], ["rfm"], ["features"], ["backtest"],
                ["fit"], ["score"], ["segments"], ["audiences", "list"],
                ["audiences", "export", "vip_service", "--format", "crm", "--out", str(tmp_path / "vip.csv")],
                ["export", "car", "--out", str(tmp_path / "car.parquet")]]
    for command in commands:
        result = runner.invoke(app, [*command, "--project", str(project)])
        assert result.exit_code == 0, (command, result.output)
        assert "Traceback" not in result.output, command
    assert "note: no returns table" in "".join(runner.invoke(app, ["rfm", "--project", str(project)]).output)
    assert pd.read_parquet(tmp_path / "car.parquet").shape[0] == 2357
    assert math.isfinite(pd.read_csv(tmp_path / "vip.csv").select_dtypes("number").sum().sum())


@pytest.mark.spark
def test_a_bare_export_scores_the_same_on_spark(bare: dict[str, object], tmp_path: Path, spark_home: Path) -> None:
    write_bare_export(tmp_path / "data")
    settings = project_for(tmp_path, "spark", spark_home)
    try:
        result = run_everything(settings, tmp_path / "data", tmp_path)
    finally:
        spark_session(settings).sql(f"DROP DATABASE IF EXISTS {settings.spark.database} CASCADE")
    left = bare["table"].sort_values("customer_key").reset_index(drop=True)
    right = result["table"].sort_values("customer_key").reset_index(drop=True)
    assert left.customer_key.tolist() == right.customer_key.tolist()
    assert np.allclose(left.clv_12m, right.clv_12m, rtol=1e-6)
    assert np.allclose(right.expected_margin.astype(float), 1.0)


def test_the_cdnow_master_log_through_the_flat_log_gives_the_published_bg_nbd(tmp_path: Path) -> None:
    """The master log mapped in patron.toml only (no code): the 1/10 sample's customers kept by a
    row filter, the literature's calibration end, and BG/NBD's published estimates come back
    (Fader, Hardie & Lee 2005: r=0.243, alpha=4.414, a=0.793, b=2.426, LL -9582.4)."""
    sample_ids = sorted(set(cdnow_sample().master_id))
    project = tmp_path / "cdnow"
    result = runner.invoke(app, ["init", str(project), "--from", str(CDNOW / "CDNOW_master.txt")])
    assert result.exit_code == 0, result.output
    config = project / "patron.toml"
    text = config.read_text()
    assert 'layout = "transactions"' in text and 'delimiter = "whitespace"' in text
    ids = ", ".join(f'"{i}"' for i in sample_ids)
    rule = f'\nexclude = [["customer_id", "not in", [{ids}]]]'
    text = text.replace('\nlayout = "transactions"', '\nlayout = "transactions"' + rule)
    config.write_text(text.replace('currency = "EUR"', 'currency = "USD"'))
    ingested = runner.invoke(app, ["ingest", "--project", str(project)])
    assert ingested.exit_code == 0, ingested.output
    settings = load_settings(project)
    with connect(settings) as warehouse:
        orders = warehouse.table("orders")
        assert warehouse.scalar(orders.customer_id.nunique()) == 2357
        assert warehouse.count(warehouse.table("order_lines")) == 6919
    pipeline.resolve(settings)
    pipeline.summarise(settings, observation_end=pd.Timestamp("1997-09-30").date())
    models = pipeline.fit(settings, purchase_model="bg_nbd")
    params = models.purchase.params_
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert params[name] == pytest.approx(value, rel=0.01), (name, params)
    assert models.purchase.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)
    # and on through every later step, on the same dates
    pipeline.features(settings, as_of=dt.date(1997, 10, 1))
    run = pipeline.backtest(settings, calibration_end=dt.date(1997, 6, 30), holdout_end=dt.date(1997, 9, 30))
    assert set(run.result.summary_frame().index) >= {"bg_nbd", "pareto_nbd"}
    scores = pipeline.score(settings)
    assert scores.result.customers == 2357
    segments = pipeline.segments(settings)
    assert segments["lifecycle_stage"]["customers"].sum() == 2357
    assert len(pipeline.audiences(settings)) >= 5
    assert pipeline.export_table(settings, "segments", tmp_path / "segments.csv") == 2357
    with connect(settings) as warehouse:
        table = warehouse.to_pandas(warehouse.table("scores"))
    assert np.isfinite(table.select_dtypes("number").to_numpy(dtype=float)).all()
