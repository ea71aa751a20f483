"""The command line end to end on a small generated retailer (DuckDB)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from patron.cli.commands import app

runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "shop"
    assert invoke("init", str(folder)).exit_code == 0
    result = invoke("generate", "--customers", "800", "--out", str(folder / "data"), "--format", "csv",
                    "--dirty-rows", "1", "--seed", "7")
    assert result.exit_code == 0, result.output
    return folder


def test_init_writes_config_and_warehouse(project: Path) -> None:
    text = (project / "patron.toml").read_text()
    assert 'engine = "duckdb"' in text
    assert (project / "patron.duckdb").exists()


def test_ingest_validate_rfm_export(project: Path, tmp_path: Path) -> None:
    result = invoke("ingest", str(project / "data"), "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "orders" in result.output and "rejected" in result.output

    again = invoke("ingest", str(project / "data"), "--project", str(project))
    assert "already ingested" in again.output

    assert invoke("validate", "--project", str(project)).exit_code == 0
    resolved = invoke("resolve", "--project", str(project))
    assert resolved.exit_code == 0, resolved.output
    assert "loyalty_id" in resolved.output and "email" in resolved.output
    summary = invoke("rfm", "--project", str(project))
    assert summary.exit_code == 0, summary.output
    assert "repeat buyers" in summary.output

    record = invoke("features", "--as-of", "2025-06-01", "--project", str(project))
    assert record.exit_code == 0, record.output
    assert "2025-06-01" in record.output
    again = invoke("features", "--project", str(project))
    assert "2 as-of date(s)" in again.output
    assert "2 as-of date(s)" in invoke("features", "--project", str(project)).output  # same date replaced
    car_file = tmp_path / "car.parquet"
    assert invoke("export", "car", "--out", str(car_file), "--project", str(project)).exit_code == 0
    car = pd.read_parquet(car_file)
    assert not car.duplicated(["customer_key", "as_of_date"]).any()
    assert car.shape[1] > 200

    checked = invoke("backtest", "--project", str(project))
    assert checked.exit_code == 0, checked.output
    assert "(champion)" in checked.output and "bg_nbd" in checked.output
    assert (project / "reports" / "backtest" / "backtest_tracking.png").exists()
    # the profit those customers actually brought in the holdout, as the orders in the warehouse add up
    calibration_end, holdout_end = re.search(r"calibration to (\S+), holdout to (\S+),", checked.output).groups()
    shown_gp2 = re.search(r"actual GP2 of these customers in the holdout: ([\d,]+)", checked.output).group(1)
    values_file = tmp_path / "order_values.parquet"
    assert invoke("export", "order_values", "--out", str(values_file), "--project", str(project)).exit_code == 0
    values = pd.read_parquet(values_file)
    day = pd.to_datetime(values["ordered_at"], utc=True).dt.strftime("%Y-%m-%d")
    known = set(values.loc[(day <= calibration_end) & values["customer_key"].notna(), "customer_key"])
    holdout = values[(day > calibration_end) & (day <= holdout_end) & values["customer_key"].isin(known)]
    assert int(shown_gp2.replace(",", "")) == pytest.approx(holdout["gp2"].sum(), abs=1)

    champion = next(line.split()[1] for line in checked.output.splitlines() if "(champion)" in line)
    by_default = invoke("fit", "--project", str(project))  # the backtest's champion, not patron.toml's bg_nbd
    assert by_default.exit_code == 0, by_default.output
    assert f"purchase model {champion}: champion of backtest" in by_default.output
    fitted = invoke("fit", "--model", "ParetoNBD", "--project", str(project))  # the old spelling still works
    assert fitted.exit_code == 0, fitted.output
    assert "purchase model pareto_nbd: chosen with --model" in fitted.output
    assert "Models m" in fitted.output and ": purchase model pareto_nbd (chosen with --model)" in fitted.output
    assert "ParetoNBD" in fitted.output and "GammaGamma" in fitted.output
    unknown = invoke("fit", "--model", "mbg", "--project", str(project))
    assert unknown.exit_code == 1 and "bg_nbd, pareto_nbd, mbg_nbd" in unknown.output
    scored = invoke("score", "--project", str(project))
    assert scored.exit_code == 0, scored.output
    assert "CLV 12m" in scored.output
    assert re.search(r"Wrote warehouse table scores \([\d,]+ rows\)", scored.output)
    assert (project / "reports" / "clv_deciles.png").exists() and "Chart: " in scored.output
    scores_file = tmp_path / "scores.parquet"
    assert invoke("export", "scores", "--out", str(scores_file), "--project", str(project)).exit_code == 0
    scores = pd.read_parquet(scores_file)
    assert {"p_alive", "clv_3m", "clv_12m_lower", "clv_36m_upper", "churn_risk"} <= set(scores.columns)
    assert (scores["clv_3m"] <= scores["clv_36m"] + 1e-9).all()

    segmented = invoke("segments", "--project", str(project))
    assert segmented.exit_code == 0, segmented.output
    assert "value tier" in segmented.output
    listed = invoke("audiences", "list", "--project", str(project))
    assert listed.exit_code == 0, listed.output
    first = listed.output.splitlines()[0].strip()
    exported = tmp_path / "audience.csv"
    audience = invoke("audiences", "export", first, "--format", "google", "--out", str(exported),
                      "--project", str(project))
    assert audience.exit_code == 0, audience.output
    assert "without marketing consent" in audience.output
    google = pd.read_csv(exported)
    assert "Email" in google.columns and google["Email"].dropna().str.fullmatch("[0-9a-f]{64}").all()
    key = invoke("keys", "create", "--role", "marketer", "--project", str(project))
    assert key.exit_code == 0 and key.output.strip().startswith("ptk_")
    assert invoke("keys", "create", "--role", "pirate", "--project", str(project)).exit_code == 1
    key_id = key.output.strip().split("_")[1]
    listed_keys = invoke("keys", "list", "--project", str(project))
    assert listed_keys.exit_code == 0 and key_id in listed_keys.output and "marketer" in listed_keys.output
    assert key.output.strip() not in listed_keys.output  # the key itself is never shown again
    assert invoke("keys", "revoke", key_id, "--project", str(project)).exit_code == 0
    assert "yes" in invoke("keys", "list", "--project", str(project)).output
    unknown_key = invoke("keys", "revoke", "0123456789ab", "--project", str(project))
    assert unknown_key.exit_code == 1 and "no API key" in unknown_key.output

    out = tmp_path / "rfm.csv"
    exported = invoke("export", "rfm", "--out", str(out), "--project", str(project))
    assert exported.exit_code == 0, exported.output
    rfm = pd.read_csv(out)
    assert {"customer_key", "frequency", "recency", "T"} <= set(rfm.columns)
    assert (rfm.recency <= rfm["T"]).all()

    rejects = tmp_path / "rejects.parquet"
    assert invoke("export", "rejects", "--out", str(rejects), "--project", str(project)).exit_code == 0
    frame = pd.read_parquet(rejects)
    assert len(frame) > 0 and frame["reason"].notna().all() and (frame["line"] > 1).all()


def test_unreadable_file_gives_one_line_error(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "orders.parquet"
    bad.write_bytes(b"this is not parquet")
    result = runner.invoke(app, ["ingest", str(bad), "--project", str(project)])
    assert result.exit_code == 1
    assert "orders.parquet" in result.output
    assert "Traceback" not in result.output


def test_export_of_a_missing_table_fails_cleanly(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    result = runner.invoke(app, ["export", "nope", "--out", str(out), "--project", str(project)])
    assert result.exit_code == 1
    assert "nope" in result.output
    assert not out.exists()


def test_commands_outside_a_project_say_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "patron init" in result.output


def test_erase_prints_per_table_and_refuses_unknown_keys(project: Path) -> None:
    import duckdb

    assert invoke("ingest", str(project / "data"), "--project", str(project)).exit_code == 0
    assert invoke("resolve", "--project", str(project)).exit_code == 0
    unknown = invoke("erase", "--customer", "C-no-such-key", "--reason", "ticket 1", "--project", str(project))
    assert unknown.exit_code == 1 and "unknown customer key" in unknown.output and "C-no-such-key" in unknown.output
    with duckdb.connect(str(project / "patron.duckdb"), read_only=True) as con:
        key, records = con.execute("SELECT customer_key, count(*) FROM identity_map GROUP BY 1 "
                                   "ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
    erased = invoke("erase", "--customer", key, "--reason", "ticket 2", "--project", str(project))
    assert erased.exit_code == 0, erased.output
    assert f"{records} record(s)" in erased.output and "identity_map" in erased.output
    assert "erasure_log" in erased.output
    with duckdb.connect(str(project / "patron.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM identity_map WHERE customer_key = ?", [key]).fetchone()[0] == 0
    again = invoke("erase", "--customer", key, "--reason", "ticket 2", "--project", str(project))
    assert again.exit_code == 1  # erased: no longer known
    assert invoke("erase", "--customer", key, "--project", str(project)).exit_code == 2  # no reason
