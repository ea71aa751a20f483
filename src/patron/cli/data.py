"""Commands that set up a project and move its data.

init, generate, ingest, validate, resolve, rfm, features, export and erase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, errors, fail, parse_date, progress_reporter, project_dir
from patron.cli.render import (
    erasure_table,
    features_line,
    identity_table,
    ingest_table,
    quality_table,
    shown,
    summary_table,
    tables_line,
)
from patron.config import ENGINES, load_settings
from patron.insights.kpis import fully_rejected
from patron.tables import ORDER_VALUES, RFM, RFM_HISTOGRAM

__all__ = ["erase", "export", "features", "generate", "ingest", "init", "resolve", "rfm", "validate"]


def init(
    directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path("."),
    engine: Annotated[str, typer.Option(help=f"One of {', '.join(ENGINES)}.")] = "duckdb",
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="An export to map: patron.toml gets a proposed [[sources]] entry for it.")] = None,
) -> None:
    """Write patron.toml and an empty warehouse (with --from, a proposed mapping of FILE)."""
    with errors(), progress_reporter() as reporter:
        settings = pipeline.init_project(directory, engine=engine, from_file=from_file, reporter=reporter)
    console.print(f"Created {directory / 'patron.toml'} (engine = {settings.engine}).")
    for source in settings.sources:
        console.print(f"Source [bold]{source.name}[/]: check the proposal in patron.toml, then run "
                      f"`patron ingest` to load {source.path}.", highlight=False)


def generate(
    customers: Annotated[int, typer.Option(min=1, help="Number of persons.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    dirty_rows: Annotated[int, typer.Option(min=0, help="Bad rows of each kind to inject.")] = 0,
) -> None:
    """Write a synthetic jewellery retailer, with ground truth in truth_* files."""
    if file_format not in ("parquet", "csv"):
        raise fail("--format must be parquet or csv", 2)
    with errors(), console.status(f"Generating {customers:,} customers"):
        files = pipeline.generate(customers, out, seed=seed, fmt=file_format, dirty_rows=dirty_rows)
    console.print(f"Wrote {len(files)} files to {out}.")


def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="CSV, Excel or Parquet files, or folders of them; none: every [[sources]] entry of patron.toml.",
        show_default=False)] = None,
    table: Annotated[str | None, typer.Option(help="Contract table; default: from the file name.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Load files into the warehouse; bad rows go to the rejects table."""
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            results = pipeline.ingest(settings, paths or [], table=table, reporter=reporter)
    console.print(ingest_table(results))
    failed = fully_rejected(results)
    if failed:
        files = ", ".join(f"{shown(r.file)} ({r.table}: {r.top_reason})" for r in failed)
        raise fail(f"every row was rejected in {files}; nothing of it was loaded. See `patron export rejects "
                   "--out rejects.csv` for each row's reason")


def validate(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Data-quality report; exits non-zero when a blocking check fails."""
    with errors():
        settings = load_settings(project_dir(project))
        report = pipeline.validate(settings)
    console.print(quality_table(report))
    if not report.passed:
        raise fail(f"{len(report.blocking_failures)} blocking check(s) failed")


def resolve(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Resolve customer records and orders to persons: identity_map and order_keys."""
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            result = pipeline.resolve(settings, reporter=reporter)
    console.print(identity_table(result))


def rfm(
    observation_end: Annotated[
        str | None, typer.Option(help="Last day observed, YYYY-MM-DD; default: the day of the last order.")
    ] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Order values (GP2) and the RFM summary with its histogram of sufficient statistics."""
    with errors():
        settings = load_settings(project_dir(project))
        end = parse_date(observation_end) if observation_end else None
        with progress_reporter() as reporter:
            result = pipeline.summarise(settings, observation_end=end, reporter=reporter)
    console.print(summary_table(result, settings.reporting_currency))
    console.print(tables_line([(ORDER_VALUES, result.orders), (RFM, result.customers),
                               (RFM_HISTOGRAM, result.histogram_rows)]))


def features(
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD; only data before it counts. Default: the day "
                                              "after the last order.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """The customer analytic record (hundreds of documented features) at an as-of date → car."""
    with errors():
        settings = load_settings(project_dir(project))
        day = parse_date(as_of) if as_of else None
        with progress_reporter() as reporter:
            result = pipeline.features(settings, as_of=day, reporter=reporter)
    console.print(features_line(result))


def export(
    table: Annotated[str, typer.Argument(help="Warehouse table.")],
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Write any warehouse table to CSV or Parquet."""
    with errors():
        settings = load_settings(project_dir(project))
        rows = pipeline.export_table(settings, table, out)
    console.print(f"Wrote {rows:,} rows of {table} to {out}.")


def erase(
    customer: Annotated[list[str] | None, typer.Option(
        "--customer", "--customer-key", help="customer_key of a person to erase; repeat for several.")] = None,
    from_file: Annotated[Path | None, typer.Option(help="File of customer keys, one a line (# comments).")] = None,
    reason: Annotated[str, typer.Option(help="Request or ticket reference; no personal data.")] = "",
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """GDPR erasure of persons everywhere (warehouse, serving versions, online store); orders stay as anonymous
    facts. Works while `patron serve` runs."""
    keys = list(customer or [])
    if from_file is not None:
        keys += _keys_in_file(from_file)
    if not keys or not reason.strip():
        raise fail("give --customer KEY (or --from-file PATH) and --reason TEXT", 2)
    with errors():
        result = pipeline.erase(load_settings(project_dir(project)), keys, reason=reason)
    console.print(erasure_table(result))
    console.print(f"Logged {result.identifiers_logged:,} keyed hash(es) in erasure_log (erasure {result.erasure_id}).")
    if result.serving is not None:
        console.print(f"Serving layer: {result.serving.rows:,} row(s) removed from {len(result.serving.files)} "
                      f"published file(s), {result.serving.online_entries:,} online-store entr(y/ies) removed.")


def _keys_in_file(path: Path) -> list[str]:
    """The customer keys of a ``--from-file``: one a line, blank lines and ``#`` comment lines skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise fail(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return [k.strip() for k in lines if k.strip() and not k.lstrip().startswith("#")]
