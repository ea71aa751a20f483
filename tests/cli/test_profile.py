"""``patron profile``: cohorts side by side on screen and in a workbook that reads back as numbers."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import typer
from typer.testing import CliRunner

from patron.cli.insights import profile

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A command line holding the one command (registration in ``patron.cli.commands`` is separate)."""
    cli = typer.Typer(pretty_exceptions_enable=False)
    cli.command()(profile)
    cli.command("other")(lambda: None)  # two commands: Typer then takes the command's name
    return cli


def test_profile_writes_a_workbook_of_numbers(app: typer.Typer, profiled_project: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "profile.xlsx"
    result = runner.invoke(app, ["profile", "--cohort", "lifecycle_stage:active", "--cohort",
                                 "lifecycle_stage:lapsed", "--period", "2025-01..2025-06", "--group", "sales",
                                 "--out", str(out), "--project", str(profiled_project)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Differ most from lifecycle_stage:active" in result.output and "Group sales" in result.output
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Profiler", "Profile data", "Summary", "Comparison", "Data"]
    data = list(book["Data"].iter_rows(values_only=True))
    header = data[0]
    assert header[:6] == ("group", "feature", "level", "kind", "cohort", "period")
    body = [dict(zip(header, row, strict=True)) for row in data[1:]]
    buyers = [r for r in body if r["feature"] == "buyer"]
    assert {r["cohort"] for r in buyers} == {"lifecycle_stage:active", "lifecycle_stage:lapsed"}
    assert all(isinstance(r["value"], int | float) and 0 <= r["value"] <= 1 for r in buyers)  # numbers, not text
    assert all(isinstance(r["n"], int) for r in body)
    comparison = list(book["Comparison"].iter_rows(values_only=True, max_row=2))
    assert "diff lifecycle_stage:lapsed" in comparison[0]
    book.close()
    book = openpyxl.load_workbook(out)  # frozen panes and tables are kept in the full reader only (never saved back)
    assert book["Data"].freeze_panes == "A2" and next(iter(book["Data"].tables.values())).ref.startswith("A1:")
    assert book["Profiler"]["B5"].value == "lifecycle_stage:active"  # the interactive sheet opens on the cohorts


@pytest.mark.parametrize(("args", "message"), [
    (["--cohort", "value_tier:top_1"], "give 2 to 4 --cohort options, not 1"),
    (["--cohort", "lifecycle_stage:active", "--cohort", "no_such_thing"], "unknown cohort 'no_such_thing'"),
    (["--cohort", "lifecycle_stage:active", "--cohort", "lifecycle_stage:lapsed", "--period", "1990"],
     "period '1990' is outside the data"),
])
def test_bad_input_is_one_line_naming_the_token(app: typer.Typer, profiled_project: Path,
                                                args: list[str], message: str) -> None:
    result = runner.invoke(app, ["profile", *args, "--project", str(profiled_project)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
