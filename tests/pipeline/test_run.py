"""``patron run``: every step from patron.toml in order, the backtest when due, one run at a time."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from patron import pipeline
from patron.cli import app
from patron.config import load_settings
from patron.errors import ConfigError, QualityError, RunInProgress
from patron.pipeline.run import LOCK_NAME, chosen_steps, run_lock

SOURCES = """
[[sources]]
name = "orders"
path = "data/orders.csv"
table = "orders"

[[sources]]
name = "order_lines"
path = "data/order_lines.csv"
table = "order_lines"

[[sources]]
name = "customers"
path = "data/customers.csv"
table = "customers"

[[sources]]
name = "fx_rates"
path = "data/fx_rates.csv"
table = "fx_rates"

[[run.exports]]
audience = "vip_service"
format = "crm"
out = "exports/vip.csv"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose patron.toml maps four exports (orders, lines, customers with consent, exchange rates)
    and schedules one audience file."""
    folder = tmp_path_factory.mktemp("run")
    pipeline.generate(400, folder / "generated", seed=7, fmt="csv")
    (folder / "data").mkdir()
    for name in ("orders", "order_lines", "customers", "fx_rates"):
        (folder / "data" / f"{name}.csv").write_bytes((folder / "generated" / f"{name}.csv").read_bytes())
    pipeline.init_project(folder)
    with (folder / "patron.toml").open("a", encoding="utf-8") as toml:
        toml.write(SOURCES)
    return folder


def test_the_steps_chosen_by_name_or_start() -> None:
    assert chosen_steps() == pipeline.STEPS
    assert chosen_steps(["score", "fit"]) == ("fit", "score")
    assert chosen_steps(start="segments") == ("segments", "exports", "publish")
    with pytest.raises(ConfigError, match="not both"):
        chosen_steps(["fit"], "score")
    with pytest.raises(ConfigError, match=r"unknown step\(s\) scroe; the steps are ingest"):
        chosen_steps(["scroe"])


def test_a_whole_run_then_a_second_that_skips_what_is_not_due(project: Path) -> None:
    settings = load_settings(project)
    first = pipeline.run(settings)
    assert [s.step for s in first.steps] == list(pipeline.STEPS)
    assert all(s.status == "done" for s in first.steps), first.steps
    details = {s.step: s.detail for s in first.steps}
    assert details["ingest"].endswith("rows loaded from 4 file(s); 0 unchanged file(s) skipped")
    customers = int(details["resolve"].split()[0].replace(",", ""))
    assert details["segments"] == f"{customers:,} customers in 6 value tiers"
    exported = pd.read_csv(project / "exports" / "vip.csv")
    assert len(exported) > 0 and "customer_key" in exported.columns

    second = pipeline.run(settings, steps=["ingest", "backtest"])
    ingest, backtest = second.steps
    assert ingest.status == "done" and "0 rows loaded from 0 file(s); 4 unchanged file(s) skipped" in ingest.detail
    assert backtest.status == "skipped" and "0 day(s) old; [run] backtest_every_days = 30" in backtest.detail
    assert not (project / LOCK_NAME).exists()

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    due = pipeline.run(settings, steps=["backtest"], now=later)
    assert due.steps[0].status == "done" and due.steps[0].detail.startswith("champion ")


def test_a_blocking_quality_failure_stops_the_run(project: Path) -> None:
    settings = load_settings(project)
    # every rate is above a negative threshold
    strict = replace(settings, quality=replace(settings.quality, max_orders_without_lines_rate=-1.0))
    with pytest.raises(QualityError, match=r"blocking data-quality checks failed: orders_without_lines"):
        pipeline.run(strict, start="validate")
    assert not (project / LOCK_NAME).exists()


def test_a_second_run_is_refused_while_one_holds_the_lock(project: Path) -> None:
    settings = load_settings(project)
    with run_lock(settings, ["fit"]):
        holder = json.loads((project / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["steps"] == ["fit"]
        with pytest.raises(RunInProgress, match=rf"process {os.getpid()} on .* \(steps fit\); wait for it"):
            pipeline.run(settings, steps=["score"])
    assert not (project / LOCK_NAME).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(project: Path) -> None:
    settings = load_settings(project)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    (project / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(),
                                                 "started_at": "2026-01-01T00:00:00+00:00", "steps": ["score"]}))
    result = pipeline.run(settings, steps=["segments"])
    assert [s.step for s in result.steps] == ["segments"]
    assert not (project / LOCK_NAME).exists()


def test_the_command_prints_each_step_and_exits_1_on_a_bad_step_name(project: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--steps", "segments,exports", "--project", str(project)])
    assert done.exit_code == 0, done.output
    assert "segments" in done.output and "exports" in done.output and "done" in done.output
    bad = runner.invoke(app, ["run", "--from", "everything", "--project", str(project)])
    assert bad.exit_code == 1
    assert "unknown step(s) everything" in bad.output
