"""The ``patron`` command line: parse, call the pipeline, render. No business logic here."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from patron import pipeline
from patron.config import ENGINES, load_settings
from patron.errors import PatronError

app = typer.Typer(
    name="patron",
    help="patron: one customer view, profit CLV, segments and audiences, on DuckDB or Spark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ProjectOption = Annotated[
    Path, typer.Option("--project", "-p", help="Folder holding patron.toml.", show_default=False)
]


class RichReporter(pipeline.Reporter):
    """Progress bars on the terminal for the pipeline's long steps."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def show_note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        task_id = self.progress.add_task(description, total=total)
        yield lambda n=1: self.progress.advance(task_id, n)
        self.progress.update(task_id, completed=total if total is not None else 1, total=total or 1)


class NoteReporter(pipeline.Reporter):
    """Notes on standard error (stdout stays the command's result), for steps without a progress bar."""

    def show_note(self, message: str) -> None:
        err_console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def progress_reporter() -> Iterator[RichReporter]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        try:
            yield RichReporter(progress)
        except BaseException:
            for task_id in list(progress.task_ids):  # no stalled "0/1" line left above the error
                progress.remove_task(task_id)
            raise


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it lies inside it (shorter, and the same form for every file)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """patron's own errors become one clear line and a non-zero exit; so does anything else.

    An error patron did not foresee is a bug, but the user still gets one line naming it
    (and the traceback with ``PATRON_DEBUG=1``), never a page of a library's internals.
    """
    try:
        yield
    except PatronError as exc:
        raise _fail(str(exc)) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("PATRON_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _fail(f"unexpected {type(exc).__name__}: {first} (a bug in patron: please report it; "
                    "PATRON_DEBUG=1 shows the traceback)") from None


def _project(project: Path | None) -> Path:
    return project if project is not None else Path.cwd()


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path("."),
    engine: Annotated[str, typer.Option(help=f"One of {', '.join(ENGINES)}.")] = "duckdb",
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="An export to map: patron.toml gets a proposed [[sources]] entry for it.")] = None,
) -> None:
    """Write patron.toml and an empty warehouse (with --from, a proposed mapping of FILE)."""
    with _errors(), progress_reporter() as reporter:
        settings = pipeline.init_project(directory, engine=engine, from_file=from_file, reporter=reporter)
    console.print(f"Created {directory / 'patron.toml'} (engine = {settings.engine}).")
    for source in settings.sources:
        console.print(f"Source [bold]{source.name}[/]: check the proposal in patron.toml, then run "
                      f"`patron ingest` to load {source.path}.", highlight=False)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(min=1, help="Number of persons.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    dirty_rows: Annotated[int, typer.Option(min=0, help="Bad rows of each kind to inject.")] = 0,
) -> None:
    """Write a synthetic jewellery retailer, with ground truth in truth_* files."""
    if file_format not in ("parquet", "csv"):
        raise _fail("--format must be parquet or csv", 2)
    with _errors(), console.status(f"Generating {customers:,} customers"):
        files = pipeline.generate(customers, out, seed=seed, fmt=file_format, dirty_rows=dirty_rows)
    console.print(f"Wrote {len(files)} files to {out}.")


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="CSV, Excel or Parquet files, or folders of them; none: every [[sources]] entry of patron.toml.",
        show_default=False)] = None,
    table: Annotated[str | None, typer.Option(help="Contract table; default: from the file name.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Load files into the warehouse; bad rows go to the rejects table."""
    with _errors():
        settings = load_settings(_project(project))
        with progress_reporter() as reporter:
            results = pipeline.ingest(settings, paths or [], table=table, reporter=reporter)
    console.print(ingest_table(results))
    failed = [r for r in results if r.all_rejected]
    if failed:
        files = ", ".join(f"{_shown(Path(r.file))} ({r.table}: {r.top_reason})" for r in failed)
        raise _fail(f"every row was rejected in {files}; nothing of it was loaded. See `patron export rejects "
                    "--out rejects.csv` for each row's reason")


def ingest_table(results: list) -> Table:
    table = Table(title="Ingest")
    erased = any(r.erased for r in results)  # rows of persons in erasure_log (see patron.governance.privacy)
    excluded = any(r.excluded for r in results)  # rows an exclude rule of a source matched
    resolved = any(r.resolved for r in results)  # earlier rejects of the file that load now
    columns = ("table", "file", "read", "loaded", "unchanged", "rejected") + (("excluded",) if excluded else ()) \
        + (("erased",) if erased else ()) + (("rejects fixed",) if resolved else ())
    for column in columns:
        table.add_column(column, justify="right" if column not in ("table", "file") else "left")
    for r in results:
        note = " (already ingested)" if r.skipped_file else ""
        rejected = f"[red]{r.rejected:,}[/]" if r.rejected else "0"
        table.add_row(r.table, Path(r.file).name + note, f"{r.rows_read:,}", f"{r.loaded:,}",
                      f"{r.unchanged:,}", rejected, *((f"{r.excluded:,}",) if excluded else ()),
                      *((f"{r.erased:,}",) if erased else ()), *((f"{r.resolved:,}",) if resolved else ()))
    return table


@app.command()
def validate(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Data-quality report; exits non-zero when a blocking check fails."""
    with _errors():
        settings = load_settings(_project(project))
        report = pipeline.validate(settings)
    console.print(quality_table(report))
    if not report.passed:
        raise _fail(f"{len(report.blocking_failures)} blocking check(s) failed")


def quality_table(report) -> Table:
    table = Table(title="Data quality")
    for column in ("check", "table", "severity", "metric", "threshold", "result"):
        table.add_column(column)
    for r in report.results:
        verdict = "[green]pass[/]" if r.passed else ("[red]FAIL[/]" if r.severity == "blocking"
                                                     else "[yellow]warn[/]")
        table.add_row(r.name, r.table, r.severity, f"{r.metric:.4g}", f"{r.threshold:.4g}", verdict)
    return table


@app.command()
def resolve(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Resolve customer records and orders to persons: identity_map and order_keys."""
    with _errors():
        settings = load_settings(_project(project))
        with progress_reporter() as reporter:
            result = pipeline.resolve(settings, reporter=reporter)
    console.print(identity_table(result))


def identity_table(result: pipeline.ResolveResult) -> Table:
    table = Table(title=f"Identity resolution: {result.customers:,} customers")
    table.add_column("linked by")
    table.add_column("customer records", justify="right")
    table.add_column("orders", justify="right")
    methods = sorted(set(result.records_by_method) | set(result.orders_by_method))
    for method in methods:
        table.add_row(method, f"{result.records_by_method.get(method, 0):,}",
                      f"{result.orders_by_method.get(method, 0):,}")
    return table


@app.command()
def rfm(
    observation_end: Annotated[
        str | None, typer.Option(help="Last day observed, YYYY-MM-DD; default: the day of the last order.")
    ] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Order values (GP2) and the RFM summary with its histogram of sufficient statistics."""
    with _errors():
        settings = load_settings(_project(project))
        end = _parse_date(observation_end) if observation_end else None
        with progress_reporter() as reporter:
            result = pipeline.summarise(settings, observation_end=end, reporter=reporter)
    console.print(summary_table(result, settings.reporting_currency))


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"not a date (YYYY-MM-DD): {text!r}", 2) from None


def summary_table(result: pipeline.SummaryResult, currency: str) -> Table:
    unit = "week" if result.unit_days == 7 else "day"
    table = Table(title=f"Customer summary to {result.observation_end} (time unit: {unit})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    stats = result.stats
    rows = [
        ("orders", f"{result.orders:,}"),
        ("customers", f"{result.customers:,}"),
        ("repeat buyers", f"{stats.get('repeat_share', 0):.1%}"),
        ("mean repeat purchases", f"{stats.get('mean_frequency', 0):.2f}"),
        (f"mean age T ({unit}s)", f"{stats.get('mean_T', 0):.1f}"),
        (f"revenue ({currency})", f"{stats.get('total_revenue', 0):,.0f}"),
        (f"gross profit 2 ({currency})", f"{stats.get('total_gp2', 0):,.0f}"),
        ("distinct (frequency, recency, T) rows", f"{result.histogram_rows:,}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


@app.command()
def features(
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD; only data before it counts. Default: the day "
                                              "after the last order.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """The customer analytic record (hundreds of documented features) at an as-of date → car."""
    with _errors():
        settings = load_settings(_project(project))
        day = _parse_date(as_of) if as_of else None
        with progress_reporter() as reporter:
            result = pipeline.features(settings, as_of=day, reporter=reporter)
    console.print(features_line(result))


def features_line(result: pipeline.FeaturesResult) -> str:
    return (f"Customer analytic record at {result.as_of}: {result.customers:,} customers × {result.features} "
            f"features (table car, {result.as_of_dates} as-of date(s); see docs/data-dictionary.md).")


@app.command()
def backtest(
    calibration_end: Annotated[str | None, typer.Option(help="Last calibration day, YYYY-MM-DD.")] = None,
    holdout_end: Annotated[str | None, typer.Option(help="Last holdout day; default: the observation end.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Fit the purchase models on a calibration period and measure them on the holdout."""
    with _errors():
        settings = load_settings(_project(project))
        start = _parse_date(calibration_end) if calibration_end else None
        end = _parse_date(holdout_end) if holdout_end else None
        with progress_reporter() as reporter:
            run = pipeline.backtest(settings, calibration_end=start, holdout_end=end, reporter=reporter)
    console.print(backtest_table(run))
    for chart in run.charts:
        console.print(f"Chart: {_shown(chart)}")


def backtest_table(run: pipeline.BacktestRun) -> Table:
    """One row per model; a model that did not fit is a row with its reason, fit warnings (*) go below."""
    from rich.text import Text  # reasons and warnings hold brackets that are not markup

    result = run.result
    title = (f"Backtest {run.run_id}: calibration to {result.calibration_end}, holdout to {result.holdout_end}, "
             f"{result.n_customers:,} customers")
    table = Table(title=title, caption_justify="left")
    noted = bool(result.failures or result.warnings)
    columns = ("model", "predicted", "actual", "error", "MAE", "RMSE", "Gini", "Spearman", "Brier", "P(alive)")
    for column in (*columns, "note")[:len(columns) + noted]:
        table.add_column(column, justify="left" if column in ("model", "note") else "right",
                         no_wrap=column == "model")
    champion = result.champion
    for name, frame in result.summary_frame().iterrows():
        label = f"{name} (champion)" if name == champion else str(name)
        label = label + " *" if name in result.warnings else label
        note = ["fit warning, see *"] if name in result.warnings else [""]
        table.add_row(f"[bold]{label}[/]" if name == champion else label, f"{frame.predicted_total:,.0f}",
                      f"{frame.actual_total:,.0f}", f"{frame.total_error_relative:+.1%}", f"{frame.mae:.3f}",
                      f"{frame.rmse:.3f}", f"{frame.gini:.3f}", f"{frame.spearman:.3f}", f"{frame.brier:.4f}",
                      f"{frame.mean_p_alive:.1%}", *note[:noted])
    for name, reason in result.failures.items():
        table.add_row(name, *["-"] * (len(columns) - 1), Text(f"did not fit: {reason}"))
    table.caption = Text("champion: calibrated on who buys again (Brier), then lowest RMSE, then BIC, then total "
                         "error (docs/model-choice.md); P(alive): mean over customers at the calibration end")
    if result.warnings:
        table.caption.append("\n" + "\n".join(f"* {name}: {line}" for name, lines in result.warnings.items()
                                               for line in lines))
    return table


@app.command()
def fit(
    model: Annotated[str | None, typer.Option(
        help="bg_nbd, pareto_nbd or mbg_nbd; default: the last backtest's champion, else patron.toml.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Fit the purchase, spend and margin models and store them as the champion."""
    with _errors():
        settings = load_settings(_project(project))
        with progress_reporter() as reporter:
            models = pipeline.fit(settings, purchase_model=model, reporter=reporter)
    console.print(models_table(models))


def models_table(models) -> Table:
    """The fitted parameters (at bound / not identified ones marked), fit warnings (*) below, the margin in words."""
    from rich.text import Text  # warnings hold brackets that are not markup

    from patron.scoring.model_store import purchase_model_key

    purchase = purchase_model_key(models.purchase)
    reason = models.settings.get("purchase_model_reason")
    title = f"Models {models.model_id}: purchase model {purchase}" + (f" ({reason})" if reason else "")
    table = Table(title=title, caption_justify="left")
    for column in ("model", "parameters", "log-likelihood"):
        table.add_column(column)
    warned = []
    for component in (models.purchase, models.spend):
        notes = getattr(component, "parameter_notes_", {})
        params = ", ".join(f"{k}={v:.4g}" + (f" ({notes[k]})" if notes.get(k) else "")
                           for k, v in component.params_.items())
        lines = list(getattr(component, "fit_warnings_", []))
        warned += lines
        table.add_row(type(component).__name__ + (" *" if lines else ""), params, f"{component.log_likelihood_:,.1f}")
    table.add_row("KeptMargin", models.margin.describe(), "")
    if warned:
        table.caption = Text("\n".join(f"* {line}" for line in warned))
    return table


@app.command()
def score(
    model_id: Annotated[str | None, typer.Option(help="Stored models to use; default: the champion.")] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Score every customer: p_alive, expected orders and value, CLV with an interval per horizon."""
    with _errors():
        settings = load_settings(_project(project))
        with progress_reporter() as reporter:
            run = pipeline.score(settings, model_id=model_id, reporter=reporter)
    console.print(scores_table(run, settings.reporting_currency))


def scores_table(run: pipeline.ScoreRun, currency: str) -> Table:
    result = run.result
    table = Table(title=f"Scores: {result.customers:,} customers to {result.observation_end} "
                        f"({result.distinct_rows:,} distinct histories)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean probability alive", f"{run.totals['mean_p_alive']:.1%}")
    table.add_row(f"historic GP2 ({currency})", f"{run.totals['historic_gp2']:,.0f}")
    for key, value in run.totals.items():
        if key.startswith("clv_"):
            table.add_row(f"CLV {key[4:]} ({currency})", f"{value:,.0f}")
    top = run.deciles.loc[run.deciles["decile"] == 1, "total"].sum()
    total = run.deciles["total"].sum()
    if total:
        table.add_row("share of long-horizon CLV in the top 10%", f"{top / total:.1%}")
    return table


@app.command()
def segments(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Value tiers, RFM segments, lifecycle and the strategy grid for every scored customer → segments."""
    with _errors():
        settings = load_settings(_project(project))
        counts = pipeline.segments(settings)
    for column, frame in counts.items():
        console.print(frame_table(frame, title=f"Customers by {column.replace('_', ' ')}"))


def frame_table(frame, *, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if frame[column].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{v:,}" if isinstance(v, int) else f"{v:,.2f}" if isinstance(v, float) else str(v)
                        for v in row])
    return table


audiences_app = typer.Typer(help="Named audiences defined in patron.toml: list them, export them.",
                            no_args_is_help=True)
app.add_typer(audiences_app, name="audiences")


@audiences_app.command("list")
def audiences_list(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """The defined audiences, one name a line first, then their sizes."""
    with _errors():
        settings = load_settings(_project(project))
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
    with _errors():
        settings = load_settings(_project(project))
        result = pipeline.export_audience(settings, name, file_format, out, market=market, horizon=horizon)
    console.print(f"Wrote {result.rows:,} people of audience {name} to {result.path} ({file_format}); "
                  f"left out: {result.excluded_no_consent:,} without marketing consent, "
                  f"{result.without_identifier:,} without an email or phone.")


keys_app = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, analyst, marketer or store.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Create an API key for a role; it is printed once and stored only as a salted hash."""
    with _errors():
        settings = load_settings(_project(project))
        key = pipeline.create_api_key(settings, role)
    console.print(key, highlight=False, soft_wrap=True)
    err_console.print(f"Key for role {role} created; store it now, it cannot be shown again. "
                      "(While `patron serve` runs, create keys through its POST /keys instead.)")


@keys_app.command("list")
def keys_list(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Every API key's id, role, creation time and whether it is revoked (never the key)."""
    with _errors():
        keys = pipeline.api_keys(load_settings(_project(project)))
    table = Table(title=f"{len(keys):,} API key(s)")
    for column in ("key id", "role", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(str(k["key_id"]), str(k["role"]), f"{k['created_at']:%Y-%m-%d %H:%M} UTC",
                      "[red]yes[/]" if k["revoked"] else "no")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The 12 hex digits after ptk_.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Revoke an API key: the service refuses it within 5 seconds (or at once through DELETE /keys/{id})."""
    with _errors():
        revoked = pipeline.revoke_api_key(load_settings(_project(project)), key_id)
    if not revoked:
        raise _fail(f"no API key {key_id}; `patron keys list` shows them")
    console.print(f"Key {key_id} revoked.")


@app.command()
def erase(
    customer: Annotated[list[str] | None, typer.Option(
        "--customer", "--customer-key", help="customer_key of a person to erase; repeat for several.")] = None,
    from_file: Annotated[Path | None, typer.Option(help="File of customer keys, one a line (# comments).")] = None,
    reason: Annotated[str, typer.Option(help="Request or ticket reference; no personal data.")] = "",
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """GDPR erasure of persons everywhere; orders stay as anonymous facts. Stop `patron serve` first."""
    keys = list(customer or [])
    if from_file is not None:
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _fail(f"{from_file}: cannot read file ({exc.strerror or exc})") from None
        keys += [k.strip() for k in lines if k.strip() and not k.lstrip().startswith("#")]
    if not keys or not reason.strip():
        raise _fail("give --customer KEY (or --from-file PATH) and --reason TEXT", 2)
    with _errors():
        result = pipeline.erase(load_settings(_project(project)), keys, reason=reason)
    table = Table(title=f"Erased {len(result.customer_keys):,} customer key(s), {result.records:,} record(s)")
    for column in ("table", "rows deleted", "rows anonymised"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, counts in result.tables.items():
        table.add_row(name, f"{counts.deleted:,}", "rebuilt" if counts.rebuilt else f"{counts.anonymised:,}")
    console.print(table)
    console.print(f"Logged {result.identifiers_logged:,} keyed hash(es) in erasure_log (erasure {result.erasure_id}).")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Run the scoring API (OpenAPI docs at /docs); requests need an X-API-Key header."""
    with _errors():
        settings = load_settings(_project(project))
        try:
            import uvicorn

            from patron.service.app import create_app
        except ImportError:
            raise _fail("the service needs the 'service' extra: pip install 'patron[service]'") from None
        uvicorn.run(create_app(settings), host=host, port=port)


@app.command()
def export(
    table: Annotated[str, typer.Argument(help="Warehouse table.")],
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Write any warehouse table to CSV or Parquet."""
    with _errors():
        settings = load_settings(_project(project))
        rows = pipeline.export_table(settings, table, out)
    console.print(f"Wrote {rows:,} rows of {table} to {out}.")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=100, help="Persons in the sample retailer.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    project: ProjectOption = Path("demo"),
) -> None:
    """Sample retailer → ingest → validate → resolve → summary → backtest → fit → score, with a report."""
    with _errors(), progress_reporter() as reporter:
        result = pipeline.run_demo(project, customers=customers, seed=seed, reporter=reporter)
    console.print(ingest_table(result.ingest))
    console.print(quality_table(result.quality))
    console.print(identity_table(result.identity))
    console.print(summary_table(result.summary, result.currency))
    console.print(features_line(result.features))
    console.print(backtest_table(result.backtest))
    console.print(models_table(result.models))
    console.print(scores_table(result.scores, result.currency))
    console.print(frame_table(result.segments["value_tier"], title="Customers by value tier"))
    sizes = result.audiences.drop(columns=["description"])
    console.print(frame_table(sizes, title="Audiences (members: with marketing consent)"))
    for chart in result.charts:
        console.print(f"Chart: {_shown(chart)}")
    console.print(f"[bold green]Demo project ready in {project}[/] — try `patron export rfm "
                  f"--project {project} --out rfm.csv`.")


def main() -> None:  # pragma: no cover - entry point
    app()
