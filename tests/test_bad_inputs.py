"""Every command on bad input: one clear line on standard error and a non-zero exit, never a traceback.

Run as a user runs patron: the installed ``patron`` command in a subprocess, so what
is checked is exactly what reaches the terminal (stderr, exit code).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from patron.config import load_settings
from patron.engine import connect

PATRON = Path(sys.executable).with_name("patron")
ORDERS_HEADER = "order_id,source,customer_id,ordered_at,channel,country,currency\n"


def patron(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PATRON_DEBUG", None)
    return subprocess.run([str(PATRON), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stdout + result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert patron("init", str(tmp_path / "shop"), cwd=tmp_path).returncode == 0
    return tmp_path / "shop"


@pytest.mark.parametrize("command", [["rfm"], ["features"], ["resolve"], ["backtest"], ["fit"], ["score"],
                                     ["segments"], ["audiences", "list"], ["validate"]])
def test_commands_in_a_project_without_data_say_so_in_one_line(project: Path, command: list[str]) -> None:
    assert_one_line_error(patron(*command, cwd=project))


def test_a_file_whose_every_row_is_rejected_fails_loudly(project: Path) -> None:
    (project / "orders.csv").write_text(ORDERS_HEADER + "1,web,a,24.12.2024,online,DE,EUR\n"
                                        "2,web,b,25.12.2024,online,DE,EUR\n", encoding="utf-8")
    result = patron("ingest", "orders.csv", cwd=project)
    assert_one_line_error(result, "every row was rejected", "orders.csv", "cannot parse")
    assert "EVERY row was rejected" in result.stdout  # the note, above the ingest table


def test_a_parquet_file_of_the_wrong_types_fails_loudly(project: Path) -> None:
    frame = pd.DataFrame({"order_id": [1, 2], "source": ["web", "web"], "customer_id": ["a", "b"],
                          "ordered_at": [20241224, 20241225], "channel": ["online"] * 2, "country": ["DE"] * 2,
                          "currency": ["EUR"] * 2})
    frame.to_parquet(project / "orders.parquet")
    assert_one_line_error(patron("ingest", "orders.parquet", cwd=project), "every row was rejected")


def test_a_binary_file_and_a_missing_path_give_one_line(project: Path) -> None:
    (project / "orders.csv").write_bytes(bytes(range(256)) * 64)
    assert_one_line_error(patron("ingest", "orders.csv", cwd=project), "not a text CSV file")
    assert_one_line_error(patron("ingest", "nothere/", cwd=project), "nothere", "no such file or folder")


def test_a_semicolon_file_with_a_byte_order_mark_loads(project: Path) -> None:
    text = ORDERS_HEADER.replace(",", ";") + "1;web;a;2024-12-24;online;DE;EUR\n"
    (project / "orders.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = patron("ingest", "orders.csv", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "delimiter ';' detected" in result.stdout


def test_a_future_order_is_rejected_and_a_corrected_file_clears_its_rejects(project: Path) -> None:
    path = project / "orders.csv"
    path.write_text(ORDERS_HEADER + "1,web,a,2024-12-24,online,DE,EUR\n2,web,b,2031-01-01,online,DE,EUR\n",
                    encoding="utf-8")
    assert patron("ingest", "orders.csv", cwd=project).returncode == 0  # one row loads: not every row failed
    with connect(load_settings(project)) as warehouse:
        rejects = warehouse.to_pandas(warehouse.table("rejects"))
    assert rejects.line.tolist() == [3] and "in the future" in rejects.reason.iloc[0]
    path.write_text(ORDERS_HEADER + "1,web,a,2024-12-24,online,DE,EUR\n2,web,b,2025-01-01,online,DE,EUR\n",
                    encoding="utf-8")
    result = patron("ingest", "orders.csv", cwd=project)
    assert result.returncode == 0 and "rejects fixed" in result.stdout, result.stdout
    with connect(load_settings(project)) as warehouse:
        assert warehouse.count(warehouse.table("rejects")) == 0
        assert warehouse.count(warehouse.table("orders")) == 2
