"""The terminal as a front end: what a user reads after each step command (issue 14, item 11).

One scored project (the session's ``scored_project``, copied so that nothing shared changes)
serves every test; the commands run through Typer's runner as a user types them, and once as
a real process whose output goes to a pipe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import patron
from patron.cli.commands import app
from patron.config import Settings, load_settings, write_default_config
from patron.pipeline.activation import in_order, segment_order

runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def project(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scored project (fitted, scored, segmented) with a patron.toml."""
    folder = tmp_path_factory.mktemp("terminal") / "shop"
    shutil.copytree(scored_project.parent, folder)
    write_default_config(folder)
    return folder


def test_version_prints_the_package_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"patron {patron.__version__}"


def test_segments_shows_tiers_in_tier_order_the_grid_its_table_and_charts(project: Path) -> None:
    result = invoke("segments", "--project", str(project))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    tiers = load_settings(project).segments.tier_names
    first_line = {tier: next(i for i, line in enumerate(lines) if re.search(rf"│ {tier}\s+│", line))
                  for tier in tiers}
    assert [first_line[t] for t in tiers] == sorted(first_line.values())  # top_1 ... bottom_50, not by name

    assert "Strategy grid" in result.stdout
    grid = [line for line in lines if re.match(r"│ (high|medium|low)\s+│ (high|medium|low)\s+│", line)]
    assert len(grid) == 9  # current × potential value; engagement is the columns
    assert [re.findall(r"\w+", row)[:2] for row in grid[:3]] == [["high", "high"], ["high", "medium"],
                                                                 ["high", "low"]]
    totals = [int(row.rstrip(" │").rsplit("│", 1)[1].replace(",", "")) for row in grid]
    customers = int(re.search(r"Wrote warehouse table segments \(([\d,]+) rows\)", result.stdout)
                    .group(1).replace(",", ""))
    assert sum(totals) == customers > 0

    charts = re.findall(r"Chart: (\S+)", result.stdout)
    assert {Path(c).name for c in charts} == {"monthly_activity.png", "repeat_purchases.png", "clv_deciles.png"}
    assert all(Path(c).exists() and Path(c).parent == project / "reports" for c in charts)


def test_rfm_and_score_name_the_tables_they_wrote(project: Path) -> None:
    summary = invoke("rfm", "--project", str(project))
    assert summary.exit_code == 0, summary.output
    assert re.search(r"Wrote warehouse tables order_values \([\d,]+ rows\), rfm \([\d,]+ rows\), "
                     r"rfm_histogram \([\d,]+ rows\)\.", summary.stdout)

    scored = invoke("score", "--project", str(project))
    assert scored.exit_code == 0, scored.output
    assert re.search(r"Wrote warehouse table scores \([\d,]+ rows\)\.", scored.stdout)
    charts = [Path(c) for c in re.findall(r"Chart: (\S+)", scored.stdout)]
    assert {c.name for c in charts} == {"monthly_activity.png", "repeat_purchases.png", "clv_deciles.png"}
    assert all(c.stat().st_size > 10_000 for c in charts)


def test_run_says_where_its_charts_are(project: Path) -> None:
    result = invoke("run", "--steps", "score", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "Chart: " in result.stdout and "clv_deciles.png" in result.stdout


def test_piped_output_is_not_cut_to_80_columns(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "patron.cli", "audiences", "list", "--project", str(project)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert "excluded_no_consent" in done.stdout  # the last column's full name
    assert any(len(line) > 120 for line in done.stdout.splitlines())  # a table as wide as its content


def test_a_failed_step_leaves_no_progress_line_above_the_error(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path / "shop")).exit_code == 0
    broken = tmp_path / "orders.parquet"
    broken.write_bytes(b"not parquet at all")
    result = invoke("ingest", str(broken), "--project", str(tmp_path / "shop"))
    assert result.exit_code == 1
    assert result.stdout == ""  # no "⠋ Ingesting 0/1", not even an empty line
    assert result.stderr.startswith("error: ") and "orders.parquet" in result.stderr


def test_export_for_a_market_without_members_says_so_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "vip.csv"
    result = invoke("audiences", "export", "value_lookalike_seed", "--format", "crm", "--out", str(out),
                    "--market", "XX", "--project", str(project))
    assert result.exit_code == 1
    assert "'XX'" in result.stderr and "in other markets" in result.stderr
    # this project's customers have no market: they are counted as such
    assert re.search(r"it has [1-9][\d,]* member\(s\) in other markets \([\d,]+ without a market\)", result.stderr)
    assert not out.exists() and not list(tmp_path.iterdir())  # no file, no temporary file


def test_export_files_round_money_and_probabilities(project: Path, tmp_path: Path) -> None:
    for fmt, columns in (("crm", {"clv": 2, "retention_offer_cap": 2}),
                         ("csv", {"clv": 2, "p_alive": 4, "churn_risk": 4})):
        out = tmp_path / f"{fmt}.csv"
        result = invoke("audiences", "export", "value_lookalike_seed", "--format", fmt, "--out", str(out),
                        "--project", str(project))
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(out, dtype=str)
        assert len(frame) > 0
        for column, digits in columns.items():
            decimals = frame[column].dropna().str.partition(".")[2].str.len()
            assert decimals.max() <= digits, (fmt, column, frame[column].head())
            assert decimals.max() >= 1  # still to the cent / to 4 places, not whole numbers



def test_tiers_follow_the_configured_tier_order_not_the_alphabet(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    settings = replace(settings, segments=replace(settings.segments, tier_names=("gold", "silver", "bronze"),
                                                  tier_shares=(0.1, 0.5, 1.0)))
    counts = pd.DataFrame({"value_tier": ["bronze", "gold", "other", "silver"], "customers": [50, 10, 1, 40]})
    ordered = in_order(counts, "value_tier", segment_order(settings, "value_tier"))
    assert ordered["value_tier"].tolist() == ["gold", "silver", "bronze", "other"]
    assert ordered["customers"].tolist() == [10, 40, 50, 1]
