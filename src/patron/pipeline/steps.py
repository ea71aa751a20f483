"""The pipeline steps: each opens the project's warehouse, runs engine-neutral transforms, writes tables."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.config import Settings, SourceMapping, load_settings, write_default_config
from patron.engine import Warehouse, connect
from patron.errors import PatronError, QualityError
from patron.tables import (
    CAR,
    IDENTITY_MAP,
    ORDER_EVENTS,
    ORDER_KEYS,
    ORDER_VALUES,
    RFM,
    RFM_HISTOGRAM,
    SEASONALITY,
    SEGMENTS,
)
from patron.transforms.observation import observation_end as observed_until
from patron.transforms.seasonality import stored_seasonality


class Reporter:
    """Where long steps report progress and what they skipped; the default stays silent.

    ``note`` is how a step says, once and in plain words, what it left out and why
    ("no returns table: GP2 counts no refunds"). Notes are kept in ``notes`` (each
    message once) so that library users can read them after the step.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A unit of work; the yielded function advances it by ``n`` items."""
        yield lambda n=1: None

    def note(self, message: str) -> None:
        """Record that a step skipped or assumed something; a repeated message is kept once."""
        if message not in self.notes:
            self.notes.append(message)
            self.show_note(message)

    def show_note(self, message: str) -> None:
        """Show a new note; the default shows nothing (the CLI prints it)."""


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """Connect to the project's warehouse for one step, closing it afterwards."""
    warehouse = connect(settings)
    try:
        yield warehouse
    finally:
        if warehouse.engine == "duckdb":
            warehouse.close()


def init_project(project_dir: Path, *, engine: str = "duckdb", from_file: Path | None = None,
                 reporter: Reporter | None = None) -> Settings:
    """Write ``patron.toml`` in ``project_dir`` and create its empty warehouse.

    With ``from_file``, ``patron.toml`` also gets a proposed ``[[sources]]`` mapping of the
    file (:func:`patron.transforms.propose.propose_source`); what was guessed, and what
    was not, goes to ``reporter`` as notes.
    """
    sources = ""
    if from_file is not None:
        from patron.transforms.propose import propose_source

        proposal = propose_source(from_file, project_dir=project_dir)
        sources = proposal.toml
        for line in proposal.summary:
            (reporter or Reporter()).note(line)
    write_default_config(project_dir, engine=engine, sources=sources)
    settings = load_settings(project_dir)
    with open_warehouse(settings):
        pass
    return settings


# -- generate -------------------------------------------------------------------------
def generate(customers: int, out_dir: Path, *, seed: int = 42, fmt: str = "parquet",
             dirty_rows: int = 0) -> list[Path]:
    """Write a synthetic retailer with its ground truth to ``out_dir``."""
    from patron.simulate import generate_retailer, write_retailer

    retailer = generate_retailer(customers=customers, seed=seed)
    return write_retailer(retailer, out_dir, fmt=fmt, dirty_rows=dirty_rows)


# -- ingest ---------------------------------------------------------------------------
def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, and the contract-table files inside named folders.

    A folder contributes the files of the suffixes ``read_raw`` reads (CSV, TSV, TXT,
    Excel, Parquet) whose names tell a contract table; a path that does not exist is
    an error here, before any file is read.
    """
    from patron.contract import CONTRACT
    from patron.transforms.ingest import table_for_path
    from patron.transforms.readers import SUFFIXES

    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise PatronError(f"{path}: no such file or folder")
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix.lower() not in SUFFIXES or child.name.startswith(("truth_", "~$")):
                    continue
                try:
                    table_for_path(child)
                except PatronError:
                    continue
                files.append(child)
        else:
            files.append(path)
    # load reference tables before the facts that refer to them
    order = {name: i for i, name in enumerate(CONTRACT)}

    def rank(file: Path) -> int:
        try:
            return order[table_for_path(file)]
        except PatronError:
            return len(order)

    return sorted(files, key=rank)


def ingest(settings: Settings, paths: Sequence[Path] = (), *, table: str | None = None,
           reporter: Reporter | None = None) -> list:
    """Load each file into its contract table; bad rows go to ``rejects``.

    With no ``paths``, every ``[[sources]]`` entry of ``patron.toml`` is ingested through
    its mapping. A named file or folder that is a configured source's path (or a file
    in its folder) is read with that source's mapping; any other file as named.
    """
    from patron.transforms.ingest import ingest_file

    reporter = reporter or Reporter()
    jobs = _ingest_jobs(settings, paths)
    if not jobs:
        raise PatronError("no CSV or Parquet files of contract tables found in "
                          + ", ".join(str(p) for p in paths))
    results = []
    with open_warehouse(settings) as warehouse, reporter.task("Ingesting", total=len(jobs)) as advance:
        for file, source in jobs:
            if source is None:
                result = ingest_file(warehouse, file, table=table)
                for warning in [] if result.skipped_file else result.warnings:
                    reporter.note(warning)
                results.append(result)
            else:
                results.extend(_ingest_mapped(warehouse, file, source, reporter))
            advance(1)
    for result in results:
        if result.all_rejected:
            reporter.note(f"{result.file}: EVERY row was rejected ({result.rejected:,} rows into {result.table}; "
                          f"most often: {result.top_reason}); check the file's columns, dates and numbers, or map "
                          "them with a [[sources]] entry (docs/mapping.md)")
    return results


def _ingest_jobs(settings: Settings, paths: Sequence[Path]) -> list[tuple[Path, SourceMapping | None]]:
    """Each file to ingest with the source mapping it is read through (None: a contract-named file)."""
    from patron.transforms.mapping import source_files

    if not paths:
        if not settings.sources:
            raise PatronError("no path given and no [[sources]] in patron.toml: name files to ingest, or map "
                              "your exports in patron.toml (`patron init --from FILE` proposes a mapping)")
        return [(f, s) for s in settings.sources for f in source_files(s, settings.project_dir)]
    by_path = {s.resolved_path(settings.project_dir).resolve(): s for s in settings.sources if s.path}
    jobs: list[tuple[Path, SourceMapping | None]] = []
    plain: list[Path] = []
    for path in paths:
        here = path.resolve()
        source = (by_path.get(here) or by_path.get(here.parent)) if path.is_file() else by_path.get(here)
        if source is None:
            plain.append(path)
        elif path.is_dir():
            jobs += [(f, source) for f in source_files(source, settings.project_dir)]
        else:
            jobs.append((path, source))
    return jobs + [(f, None) for f in expand_paths(plain)] if plain else jobs


def _ingest_mapped(warehouse: Warehouse, file: Path, source: SourceMapping, reporter: Reporter) -> list:
    """One file of a configured source: read, mapped to the contract, each table ingested."""
    from patron.transforms.ingest import ingest_raw
    from patron.transforms.mapping import apply_mapping, read_source

    results = []
    for mapped in apply_mapping(read_source(file, source, warehouse), source):
        result = ingest_raw(warehouse, mapped.raw, mapped.table, records=mapped.records,
                            set_aside=mapped.set_aside, origin=mapped.origin)
        for warning in [] if result.skipped_file else result.warnings:
            reporter.note(warning)
        results.append(result)
    return results


# -- validate -------------------------------------------------------------------------
def validate(settings: Settings, *, now: dt.datetime | None = None):
    """Run the data-quality checks, store the report and return it."""
    from patron.transforms.quality import run_checks, write_report

    with open_warehouse(settings) as warehouse:
        report = run_checks(warehouse, settings.quality, now=now)
        write_report(warehouse, report)
    return report


def require_quality(report) -> None:
    """Stop modelling when a blocking data-quality check failed."""
    if not report.passed:
        names = ", ".join(r.name for r in report.blocking_failures)
        raise QualityError(f"blocking data-quality checks failed: {names}; see `patron validate`")


# -- resolve --------------------------------------------------------------------------
@dataclass
class ResolveResult:
    """What ``resolve`` wrote: record and order counts per method."""

    records_by_method: dict[str, int]
    orders_by_method: dict[str, int]
    customers: int


def resolve(settings: Settings, *, reporter: Reporter | None = None) -> ResolveResult:
    """Resolve customer records and orders to persons: ``identity_map`` and ``order_keys``.

    Only ``orders`` is needed: without a ``customers`` table each account on the orders is
    one person. What was skipped (no customers table, probabilistic matching) is noted.
    """
    from patron.transforms.identity import resolve_identities

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Resolving identities", total=1) as advance:
        if not warehouse.has_table("orders"):
            raise PatronError("there is no orders table in the warehouse; run `patron ingest` first")
        customers = warehouse.table("customers") if warehouse.has_table("customers") else None
        result = resolve_identities(customers, warehouse.table("orders"), settings=settings.identity,
                                    backend=warehouse, identity_map_name=IDENTITY_MAP, order_keys_name=ORDER_KEYS)
        for message in result.notes:
            reporter.note(message)
        advance(1)
        identity = warehouse.table(IDENTITY_MAP)
        keys = warehouse.table(ORDER_KEYS)
        records = warehouse.to_pandas(identity.group_by("method").aggregate(n=identity.count()))
        orders = warehouse.to_pandas(keys.group_by("method").aggregate(n=keys.count()))
        customers = warehouse.con.execute(keys.customer_key.nunique())
    return ResolveResult(
        records_by_method=dict(zip(records["method"], records["n"].astype(int), strict=True)),
        orders_by_method=dict(zip(orders["method"], orders["n"].astype(int), strict=True)),
        customers=int(customers),
    )


# -- summarise ------------------------------------------------------------------------
@dataclass
class SummaryResult:
    """What ``summarise`` wrote: the observation end, and the sizes of its tables."""

    observation_end: dt.date
    unit_days: int
    orders: int
    customers: int
    histogram_rows: int
    stats: dict[str, float] = field(default_factory=dict)


def summarise(settings: Settings, *, observation_end: dt.date | None = None,
              reporter: Reporter | None = None) -> SummaryResult:
    """Order values in the reporting currency, then the RFM summary and its histogram.

    With ``[model] seasonality = "auto"`` the summary is measured on a seasonal clock
    estimated from the orders (table ``seasonality``: market, month, intensity), or on the
    calendar with a note when there are under two years of orders; ``"off"``: the calendar.
    """
    from patron.transforms.events import event_order_values
    from patron.transforms.keys import provisional_customer_key, resolved_customer_key
    from patron.transforms.money import order_values
    from patron.transforms.rfm import end_of_day, rfm_histogram, rfm_summary, utc_timestamp_literal
    from patron.transforms.seasonality import month_intensity

    reporter = reporter or Reporter()
    unit_days = settings.model.unit_days
    with open_warehouse(settings) as warehouse, reporter.task("Summarising", total=3) as advance:
        tables, _ = input_tables(warehouse, ("orders", "order_lines", "returns", "order_costs", "fx_rates"),
                                 reporter)
        times = tables["orders"].select("ordered_at")
        if warehouse.has_table(ORDER_EVENTS):  # orders posted to the service count for the end too
            times = times.union(warehouse.table(ORDER_EVENTS).select("ordered_at").cast(times.schema()))
        end = observation_end or observed_until(warehouse, settings, orders=times, note=reporter.note)
        values = order_values(tables["orders"], tables["order_lines"], tables["returns"],
                              tables["order_costs"], tables["fx_rates"], as_of=end_of_day(end),
                              reporting_currency=settings.reporting_currency)
        if warehouse.has_table(ORDER_KEYS):
            keyed = resolved_customer_key(values, warehouse.table(ORDER_KEYS))
        else:  # before `patron resolve`: the best identifier each order carries
            reporter.note("identities are not resolved: customers are counted by each order's own id, "
                          "e-mail or loyalty id (one person may count twice); run `patron resolve` first")
            keyed = provisional_customer_key(values)
        if warehouse.has_table(ORDER_EVENTS):  # orders posted to the service since the files
            events = warehouse.table(ORDER_EVENTS)
            events = events.filter(events.ordered_at < utc_timestamp_literal(end_of_day(end)))
            posted = event_order_values(events, keyed.schema(), reporting_currency=settings.reporting_currency)
            keyed = keyed.union(posted.anti_join(keyed, "order_id"))
        warehouse.write(ORDER_VALUES, keyed)
        advance(1)
        clock = None
        if settings.model.seasonality == "auto":
            clock = month_intensity(warehouse.table(ORDER_VALUES), calibration_end=end, execute=warehouse.to_pandas)
            if clock.note:
                reporter.note(f"seasonality: {clock.note}")
        if clock is not None and not clock.is_flat:
            warehouse.write(SEASONALITY, clock.intensity)
        else:
            clock = None
            if warehouse.has_table(SEASONALITY):
                warehouse.drop(SEASONALITY)
        summary = rfm_summary(warehouse.table(ORDER_VALUES), observation_end=end, unit_days=unit_days, clock=clock)
        warehouse.write(RFM, summary)
        advance(1)
        warehouse.write(RFM_HISTOGRAM, rfm_histogram(warehouse.table(RFM)))
        advance(1)
        rfm = warehouse.table(RFM)
        stats = warehouse.to_pandas(
            rfm.aggregate(
                customers=rfm.count(),
                repeat_share=(rfm.frequency > 0).cast("float64").mean(),
                mean_frequency=rfm.frequency.mean(),
                mean_T=rfm["T"].mean(),
                total_gp2=rfm.total_gp2.sum(),
                total_revenue=rfm.total_revenue.sum(),
            )
        ).iloc[0].to_dict()
        return SummaryResult(
            observation_end=end,
            unit_days=unit_days,
            orders=warehouse.count(warehouse.table(ORDER_VALUES)),
            customers=int(stats.pop("customers")),
            histogram_rows=warehouse.count(warehouse.table(RFM_HISTOGRAM)),
            stats={k: float(v) for k, v in stats.items()},
        )


#: What a step goes without when an optional input holds no data, in the user's words.
MISSING_INPUT_NOTES: dict[str, str] = {
    "customers": "no customer records: demographic, consent and sign-up features are NULL",
    "products": "no products table: category, material and collection features are NULL",
    "returns": "no returns table: GP2 counts no refunds, and return features are NULL",
    "order_costs": "no order_costs table: GP2 counts no shipping, payment or handling costs",
    "engagement_events": "no engagement events: engagement features are NULL",
    "surveys": "no survey answers: NPS and CSAT features are NULL",
}
EMPTY_COLUMN_NOTES: dict[tuple[str, str], str] = {
    ("order_lines", "unit_cost"): "order_lines.unit_cost is empty: GP2 counts no cost of goods",
    ("order_lines", "discount"): "order_lines.discount is empty: no order counts a discount",
}


def input_tables(warehouse: Warehouse, names: Sequence[str],
                 reporter: Reporter) -> tuple[dict[str, ir.Table], set[str]]:
    """The contract tables ``names`` (empty ones where absent), and those holding no rows.

    Only ``orders`` and ``order_lines`` are required; for every optional table without
    data, and every optional column with no value, the reporter gets a note saying what
    the step goes without.
    """
    tables = {name: warehouse.input_table(name) for name in names}
    missing = {name for name, table in tables.items() if not warehouse.has_table(name) or warehouse.count(table) == 0}
    if {"orders", "order_lines"} & missing:
        raise PatronError("there are no orders in the warehouse; run `patron ingest` first")
    for name in sorted(missing & set(MISSING_INPUT_NOTES)):
        reporter.note(MISSING_INPUT_NOTES[name])
    for (table, column), message in EMPTY_COLUMN_NOTES.items():
        if table in tables and table not in missing:
            present = tables[table][column].notnull().any()
            if not warehouse.con.execute(present):
                reporter.note(message)
    return tables, missing


# -- features -------------------------------------------------------------------------


@dataclass
class FeaturesResult:
    """What ``features`` wrote: the as-of date, customers and features of the ``car`` table."""

    as_of: dt.date
    customers: int
    features: int
    as_of_dates: int


def features(settings: Settings, *, as_of: dt.date | None = None, reporter: Reporter | None = None) -> FeaturesResult:
    """The customer analytic record at ``as_of`` (default: the day after the last order) into ``car``.

    Only data before ``as_of`` counts. A record for the same date replaces the earlier one;
    records for other dates are kept, so ``car`` holds one row per customer per as-of date.
    """
    from patron.transforms.features import build_car, registry
    from patron.transforms.features.context import IDENTITY_TABLES, INPUT_TABLES

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Building the customer record", total=2) as advance:
        tables, missing = input_tables(warehouse, INPUT_TABLES, reporter)
        tables |= {name: warehouse.table(name) for name in IDENTITY_TABLES if warehouse.has_table(name)}
        if len(tables) == len(INPUT_TABLES):
            reporter.note("identities are not resolved: the record is keyed by each order's own ids; "
                          "run `patron resolve` first")
        day = as_of or (observed_until(warehouse, settings, orders=tables["orders"], note=reporter.note)
                        + dt.timedelta(days=1))
        scratch: list[str] = []

        def materialise(name: str, table: ir.Table) -> ir.Table:
            scratch.append(f"car_src_{name}")
            warehouse.write(scratch[-1], table)
            return warehouse.table(scratch[-1])

        try:
            car = build_car(tables, as_of=day, reporting_currency=settings.reporting_currency,
                            materialise=materialise, missing=missing)
            advance(1)
            _write_dated(warehouse, CAR, car, day)
        finally:
            for name in scratch:
                warehouse.drop(name)
        advance(1)
        written = warehouse.table(CAR)
        dates = warehouse.con.execute(written.as_of_date.nunique())
        customers = warehouse.count(written.filter(written.as_of_date == day))
    return FeaturesResult(day, customers, len(registry()), int(dates))


def _write_dated(warehouse: Warehouse, name: str, rows: ir.Table, day: dt.date) -> None:
    """Replace the rows of ``day`` in table ``name`` by ``rows``; other dates stay."""
    if warehouse.has_table(name):
        existing = warehouse.table(name)
        if list(existing.columns) == list(rows.columns):
            kept = existing.filter(existing.as_of_date != ibis.literal(day, type="date"))
            rows = kept.union(rows.cast(existing.schema()))
    warehouse.write(name, rows)


# -- backtest -------------------------------------------------------------------------
@dataclass
class BacktestRun:
    """A backtest: its result, the run id in the ``backtests`` table and its charts."""

    result: object
    run_id: str
    charts: list[Path]


def backtest(settings: Settings, *, calibration_end: dt.date | None = None, holdout_end: dt.date | None = None,
             reporter: Reporter | None = None) -> BacktestRun:
    """Fit the purchase models on a calibration period, measure them on the holdout after it.

    By default the holdout is the last ``[model] holdout_months`` before the observation
    end. Results go to the ``backtests`` table and charts to ``reports/backtest/``.
    """
    from patron.evaluation import backtest as run_backtest
    from patron.evaluation import write_backtest
    from patron.reports.backtest_charts import write_backtest_charts

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Backtesting", total=3) as advance:
        values = warehouse.table(ORDER_VALUES)
        end = holdout_end or observed_until(warehouse, settings, orders=values, note=reporter.note)
        start = calibration_end or (pd.Timestamp(end) - pd.DateOffset(months=settings.model.holdout_months)).date()
        if start >= end:
            raise PatronError(f"calibration end {start} must come before the holdout end {end}")
        advance(1)
        clock = "auto" if settings.model.seasonality == "auto" else None
        result = run_backtest(values, calibration_end=start, holdout_end=end, unit_days=settings.model.unit_days,
                              value=settings.model.value, run=warehouse, clock=clock)
        if result.seasonality is not None and result.seasonality.note:
            reporter.note(f"backtest seasonality: {result.seasonality.note}")
        advance(1)
        run_id = write_backtest(result, warehouse)
        charts = write_backtest_charts(result, settings.project_dir / "reports" / "backtest")
        advance(1)
    return BacktestRun(result, run_id, charts)


# -- fit and score --------------------------------------------------------------------
def fit(settings: Settings, *, purchase_model: str | None = None, reporter: Reporter | None = None):
    """Fit the purchase, spend and margin models on the RFM tables and store them as champion.

    The purchase model is ``purchase_model`` when given (``bg_nbd``, ``pareto_nbd``,
    ``mbg_nbd`` or a class name); else the champion of the latest backtest in table
    ``backtests`` (:func:`patron.evaluation.latest_champion`); else ``[model]
    purchase_model`` of patron.toml. The name and why it was taken are noted and kept in
    the fit's settings (``purchase_model``, ``purchase_model_reason``).
    """
    from patron.config import purchase_model_name
    from patron.evaluation import latest_champion
    from patron.scoring.batch import fit_value_models
    from patron.scoring.model_store import save_models

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse:
        if purchase_model is not None:
            name, reason = purchase_model_name(purchase_model), "chosen with --model"
        elif (stored := latest_champion(warehouse)) is not None:
            name, reason = stored.model, stored.describe()
        else:
            name = settings.model.purchase_model
            reason = "[model] purchase_model in patron.toml: no backtest yet (`patron backtest` chooses on the holdout)"
        reporter.note(f"purchase model {name}: {reason}")
        with reporter.task(f"Fitting {name}", total=1) as advance:
            models = fit_value_models(warehouse, settings=settings, purchase_model=name)
            models.settings.update(purchase_model=name, purchase_model_reason=reason)
            save_models(warehouse, models, champion=True)
            advance(1)
    return models


@dataclass
class ScoreRun:
    """What ``score`` wrote and how customer value is distributed."""

    result: object
    totals: dict[str, float]
    deciles: pd.DataFrame


def clv_deciles(scores: ir.Table, column: str) -> ir.Table:
    """Customers, total and mean of ``column`` per decile of it (decile 1 = most valuable)."""
    # Ibis' ntile is 0-based: the highest values get 9, i.e. decile 1
    ranked = scores.mutate(decile=(10 - ibis.ntile(10).over(order_by=scores[column])).cast("int64"))
    return ranked.group_by("decile").aggregate(
        customers=ranked.count(), total=ranked[column].sum(), mean=ranked[column].mean()
    ).order_by("decile")


def score(settings: Settings, *, model_id: str | None = None, reporter: Reporter | None = None) -> ScoreRun:
    """Score every customer with the stored (champion) models: the ``scores`` table."""
    from patron.scoring.batch import score_customers
    from patron.scoring.model_store import load_models

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, reporter.task("Scoring customers", total=1) as advance:
        models = load_models(warehouse, model_id=model_id)
        result = score_customers(warehouse, models, settings=settings, clock=stored_seasonality(warehouse))
        advance(1)
        scores = warehouse.table(result.table)
        horizons = settings.model.horizons_months
        totals = warehouse.to_pandas(scores.aggregate(
            **{f"clv_{h}m": scores[f"clv_{h}m"].sum() for h in horizons},
            historic_gp2=scores.historic_gp2.sum(),
            mean_p_alive=scores.p_alive.mean(),
        )).iloc[0].to_dict()
        deciles = warehouse.to_pandas(clv_deciles(scores, f"clv_{max(horizons)}m"))
    return ScoreRun(result, {k: float(v) for k, v in totals.items()}, deciles)


# -- segments, audiences, keys -------------------------------------------------------


def segments(settings: Settings, *, reporter: Reporter | None = None) -> dict[str, pd.DataFrame]:
    """Write the ``segments`` table from the scores; customers per value tier and RFM segment.

    The customer record (``car``) must be the one as of the scores' date (the day after
    their observation end); a record of another date is refused with both dates and the
    ``patron features --as-of`` command that builds the right one. Without any record the
    reporter is told that lifecycle and engagement are unknown.
    """
    from patron.activation.segments import scores_as_of, segment_counts, write_segments

    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse:
        if not warehouse.has_table(CAR):
            as_of = scores_as_of(warehouse, settings)
            reporter.note("no customer record (car): lifecycle stages are unknown and engagement low; run "
                          f"`patron features{f' --as-of {as_of}' if as_of else ''}` first")
        write_segments(warehouse, settings)
        return {column: warehouse.to_pandas(segment_counts(warehouse, column))
                for column in ("value_tier", "rfm_segment", "lifecycle_stage")}


def audiences(settings: Settings, *, reporter: Reporter | None = None) -> pd.DataFrame:
    """Every defined audience with its size, the members without consent left out."""
    from patron.activation.audiences import audience_counts, list_audiences

    reporter = reporter or Reporter()
    rows = []
    with open_warehouse(settings) as warehouse:
        consent = warehouse.input_table("customers").marketing_consent
        if warehouse.has_table(SEGMENTS) and not warehouse.con.execute(consent.notnull().any()):
            reporter.note("no marketing consent recorded (customers.marketing_consent): every customer counts "
                          "as not consenting, so audiences have no members to export")
        for audience in list_audiences(settings):
            counts = audience_counts(warehouse, settings, audience.name)
            rows.append({"name": audience.name, "description": audience.description, "matched": counts.matched,
                         "members": counts.members, "excluded_no_consent": counts.excluded_no_consent})
    return pd.DataFrame(rows)


def export_audience(settings: Settings, name: str, fmt: str, out: Path, *, market: str | None = None,
                    horizon: int | None = None):
    """Write audience ``name`` in a platform's format (google, meta, crm, csv); consent applied."""
    from patron.activation.exports import export_audience as write_audience_file

    with open_warehouse(settings) as warehouse:
        return write_audience_file(warehouse, settings, name, fmt, out, market=market, horizon=horizon)


def create_api_key(settings: Settings, role: str) -> str:
    """A new API key for ``role``; only its salted hash is stored."""
    from patron.governance.security import create_key

    with open_warehouse(settings) as warehouse:
        return create_key(warehouse, role)


def api_keys(settings: Settings) -> list[dict[str, object]]:
    """Every API key's id, role, creation time and revocation flag (never the hash)."""
    from patron.governance.security import list_keys

    with open_warehouse(settings) as warehouse:
        return list_keys(warehouse)


def revoke_api_key(settings: Settings, key_id: str) -> bool:
    """Revoke key ``key_id``; False when there is no such key."""
    from patron.governance.security import revoke_key

    with open_warehouse(settings) as warehouse:
        return revoke_key(warehouse, key_id)


# -- erase ----------------------------------------------------------------------------
def erase(settings: Settings, customer_keys: Sequence[str] = (), *, reason: str,
          records: Sequence[tuple[str, str]] = ()):
    """GDPR erasure of persons everywhere in the warehouse (see ``patron.governance.privacy``)."""
    from patron.governance.privacy import erase_customers

    with open_warehouse(settings) as warehouse:
        return erase_customers(warehouse, customer_keys, records=records, reason=reason)


# -- export ---------------------------------------------------------------------------
def export_table(settings: Settings, table: str, out: Path) -> int:
    """Write warehouse ``table`` to ``out`` (.csv or .parquet), streaming, all or nothing."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise PatronError(f"{out}: the export format is taken from the suffix: .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings) as warehouse:
        expr = warehouse.table(table)
        batches = warehouse.con.to_pyarrow_batches(expr)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(handle)
        rows = 0
        try:
            writer: pq.ParquetWriter | pacsv.CSVWriter
            if suffix == ".parquet":
                writer = pq.ParquetWriter(tmp_name, batches.schema)
            else:
                writer = pacsv.CSVWriter(tmp_name, batches.schema)
            with writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            os.replace(tmp_name, out)
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    return rows
