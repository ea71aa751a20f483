"""The renderers of patron.cli.render on hand-made results: what the user reads."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pandas as pd
from rich.console import Console
from rich.table import Table

from patron.cli.render import frame_table, ingest_table, scores_table
from patron.pipeline import ScoreRun
from patron.transforms.ingest import IngestResult


def text(table: Table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def score_run(totals: list[float]) -> ScoreRun:
    result = SimpleNamespace(customers=1200, observation_end=dt.date(2025, 6, 30), distinct_rows=345)
    deciles = pd.DataFrame({"decile": range(1, len(totals) + 1), "total": totals})
    return ScoreRun(result, {"clv_12m": 1234.4, "clv_36m": 5678.6, "historic_gp2": 9000.0, "mean_p_alive": 0.625},
                    deciles)


def test_scores_table_shows_totals_per_horizon_and_the_top_decile_share() -> None:
    table = scores_table(score_run([300.0, 100.0, 100.0]), "EUR")
    assert table.title == "Scores: 1,200 customers to 2025-06-30 (345 distinct histories)"
    shown = text(table)
    assert "mean probability alive" in shown and "62.5%" in shown
    assert "historic GP2 (EUR)" in shown and "9,000" in shown
    assert "CLV 12m (EUR)" in shown and "1,234" in shown and "CLV 36m (EUR)" in shown and "5,679" in shown
    assert "share of long-horizon CLV in the top 10%" in shown and "60.0%" in shown


def test_scores_table_leaves_out_the_share_when_there_is_no_value() -> None:
    assert "top 10%" not in text(scores_table(score_run([]), "EUR"))


def test_ingest_table_adds_columns_only_when_a_file_needs_them() -> None:
    plain = text(ingest_table([IngestResult("orders", "/data/orders.csv", rows_read=1000, loaded=1000)]))
    assert "orders.csv" in plain and "1,000" in plain and "erased" not in plain and "excluded" not in plain
    erased = text(ingest_table([IngestResult("orders", "orders.csv", rows_read=5, loaded=3, erased=2,
                                             skipped_file=True)]))
    assert "erased" in erased and "(already ingested)" in erased


def test_frame_table_formats_numbers() -> None:
    shown = text(frame_table(pd.DataFrame({"tier": ["gold"], "customers": [12345], "value": [0.5]}), title="T"))
    assert "gold" in shown and "12,345" in shown and "0.50" in shown
