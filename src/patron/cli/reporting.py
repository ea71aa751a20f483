"""``patron report``: the workbook or the self-contained HTML report of the project (see docs/reports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.cli.common import ProjectOption, console, errors, fail, progress_reporter, project_dir
from patron.cli.render import shown
from patron.config import load_settings
from patron.pipeline.reporting import FORMATS
from patron.pipeline.reporting import report as write_report

__all__ = ["report"]


def report(
    format: Annotated[str, typer.Option("--format", "-f", help="xlsx (a workbook) or html (one offline file).")],
    out: Annotated[Path, typer.Option(help="The file to write, e.g. reports/patron.xlsx.")],
    period: Annotated[str | None, typer.Option(
        help="Months shown, e.g. 2025-01..2025-12 (default: the last 12 complete months).")] = None,
    compare: Annotated[str | None, typer.Option(
        help="Months compared with (default: the same length just before).")] = None,
    market: Annotated[str | None, typer.Option(help="One market (country code), e.g. DE; default: all.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """The report for the people who decide: KPIs, trends, tiers, cohorts, profiler, audiences, models."""
    kind = format.lower()
    if kind not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, not {format!r}", 2)
    if out.suffix.lower() != f".{kind}":
        raise fail(f"--out must end in .{kind} for --format {kind}, not {out.name!r}", 2)
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            result = write_report(settings, kind, out, period=period, compare=compare,  # type: ignore[arg-type]
                                  market=market, reporter=reporter)
    console.print(f"Wrote the {kind} report ({result.period} against {result.previous}, {result.market}) "
                  f"to {shown(result.path)}.")
