"""Commands that turn scores into action: segments, and the ``audiences`` group (list, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import NoteReporter, ProjectOption, console, errors, project_dir
from patron.cli.render import frame_table, shown, strategy_grid_table, tables_line
from patron.config import load_settings
from patron.tables import SEGMENTS

__all__ = ["audiences_app", "audiences_export", "audiences_list", "segments"]


def segments(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Value tiers, RFM segments, lifecycle and the strategy grid for every scored customer → segments."""
    with errors():
        settings = load_settings(project_dir(project))
        counts = pipeline.segments(settings)
        charts = pipeline.draw_charts(settings)
    grid = counts.pop("strategy_cell")
    for column, frame in counts.items():
        console.print(frame_table(frame, title=f"Customers by {column.replace('_', ' ')}"))
    console.print(strategy_grid_table(grid))
    for chart in charts:
        console.print(f"Chart: {shown(chart)}")
    console.print(tables_line([(SEGMENTS, int(grid["customers"].sum()))]))


audiences_app = typer.Typer(help="Named audiences defined in patron.toml: list them, export them.",
                            no_args_is_help=True)


@audiences_app.command("list")
def audiences_list(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """The defined audiences, one name a line first, then their sizes."""
    with errors():
        settings = load_settings(project_dir(project))
        frame = pipeline.audiences(settings, reporter=NoteReporter())
    for name in frame["name"]:
        console.print(name, highlight=False)
    console.print(frame_table(frame, title="Audiences (members: with marketing consent)"))


@audiences_app.command("export")
def audiences_export(
    name: Annotated[str, typer.Argument(help="Audience name (see `patron audiences list`).")],
    file_format: Annotated[str, typer.Option("--format", help="google, meta, crm or csv.")],
    out: Annotated[Path, typer.Option(help="Output file.")],
    market: Annotated[str | None, typer.Option(help="Keep one market (country code).")] = None,
    horizon: Annotated[int | None, typer.Option(help="CLV horizon in months.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Write an audience in the file format an ad platform or CRM takes; consent applied, hashed ids."""
    with errors():
        settings = load_settings(project_dir(project))
        result = pipeline.export_audience(settings, name, file_format, out, market=market, horizon=horizon)
    console.print(f"Wrote {result.rows:,} people of audience {name} to {result.path} ({file_format}); "
                  f"left out: {result.excluded_no_consent:,} without marketing consent, "
                  f"{result.without_identifier:,} without an email or phone.")
