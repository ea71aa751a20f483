"""The data steps: generate, ingest, validate, resolve and summarise.

They take a retailer's files to the tables every model reads: the contract tables
(``ingest``), the data-quality report (``validate``), persons (``resolve``: ``identity_map``,
``order_keys``) and the order values and RFM summary (``summarise``). :func:`input_tables`
is how a step reads the contract tables and says, once, what it goes without.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ibis.expr.types as ir

from patron.config import Settings, SourceMapping
from patron.contract import CONTRACT
from patron.engine import Warehouse
from patron.errors import PatronError, QualityError
from patron.pipeline.project import Reporter, open_warehouse
from patron.serving.events import take_events
from patron.serving.online import open_online_store
from patron.tables import IDENTITY_MAP, ORDER_EVENTS, ORDER_KEYS, ORDER_VALUES, RFM, RFM_HISTOGRAM, SEASONALITY
from patron.transforms.days import end_of_day, utc_timestamp_literal
from patron.transforms.events import event_order_values
from patron.transforms.identity import resolve_identities
from patron.transforms.ingest import IngestResult, ingest_file, ingest_raw, table_for_path
from patron.transforms.keys import provisional_customer_key, resolved_customer_key
from patron.transforms.mapping import apply_mapping, read_source, source_files
from patron.transforms.money import order_values
from patron.transforms.observation import observation_end as observed_until
from patron.transforms.quality import QualityReport, run_checks, write_report
from patron.transforms.readers import SUFFIXES
from patron.transforms.rfm import rfm_histogram, rfm_summary
from patron.transforms.seasonality import month_intensity


# -- generate -------------------------------------------------------------------------
def generate(customers: int, out_dir: Path, *, seed: int = 42, fmt: str = "parquet",
             dirty_rows: int = 0) -> list[Path]:
    """Write a synthetic retailer with its ground truth to ``out_dir``."""
    # imported here: the simulator loads scipy.stats, a second of every CLI start-up otherwise
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
           reporter: Reporter | None = None) -> list[IngestResult]:
    """Load each file into its contract table; bad rows go to ``rejects``.

    With no ``paths``, every ``[[sources]]`` entry of ``patron.toml`` is ingested through
    its mapping. A named file or folder that is a configured source's path (or a file
    in its folder) is read with that source's mapping; any other file as named.
    """
    reporter = reporter or Reporter()
    jobs = _ingest_jobs(settings, paths)
    if not jobs:
        raise PatronError("no CSV or Parquet files of contract tables found in "
                          + ", ".join(str(p) for p in paths))
    results: list[IngestResult] = []
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


def _ingest_mapped(warehouse: Warehouse, file: Path, source: SourceMapping,
                   reporter: Reporter) -> list[IngestResult]:
    """One file of a configured source: read, mapped to the contract, each table ingested."""
    results = []
    for mapped in apply_mapping(read_source(file, source, warehouse), source):
        result = ingest_raw(warehouse, mapped.raw, mapped.table, records=mapped.records,
                            set_aside=mapped.set_aside, origin=mapped.origin)
        for warning in [] if result.skipped_file else result.warnings:
            reporter.note(warning)
        results.append(result)
    return results


# -- validate -------------------------------------------------------------------------
def validate(settings: Settings, *, now: dt.datetime | None = None) -> QualityReport:
    """Run the data-quality checks, store the report and return it."""
    with open_warehouse(settings) as warehouse:
        report = run_checks(warehouse, settings.quality, now=now)
        write_report(warehouse, report)
    return report


def require_quality(report: QualityReport) -> None:
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
        persons = warehouse.scalar(keys.customer_key.nunique())
    return ResolveResult(
        records_by_method=dict(zip(records["method"], records["n"].astype(int), strict=True)),
        orders_by_method=dict(zip(orders["method"], orders["n"].astype(int), strict=True)),
        customers=int(persons),
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


def take_logged_events(warehouse: Warehouse, settings: Settings) -> int:
    """Append the orders posted to the service since the last run (the online store's event log) to
    ``order_events``, each exactly once; returns how many."""
    with open_online_store(settings) as store:
        return take_events(warehouse, store)


def summarise(settings: Settings, *, observation_end: dt.date | None = None,
              reporter: Reporter | None = None) -> SummaryResult:
    """Order values in the reporting currency, then the RFM summary and its histogram.

    With ``[model] seasonality = "auto"`` the summary is measured on a seasonal clock
    estimated from the orders (table ``seasonality``: market, month, intensity), or on the
    calendar with a note when there are under two years of orders; ``"off"``: the calendar.
    """
    reporter = reporter or Reporter()
    unit_days = settings.model.unit_days
    with open_warehouse(settings) as warehouse, reporter.task("Summarising", total=3) as advance:
        taken = take_logged_events(warehouse, settings)
        if taken:
            reporter.note(f"took {taken:,} order(s) posted to the service since the last run from its event log")
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


# -- the contract tables a step reads ------------------------------------------------
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
            if not warehouse.scalar(present):
                reporter.note(message)
    return tables, missing
