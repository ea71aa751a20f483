"""The feature registry and ``build_car``: every CAR feature declared once, then computed in one query.

A :class:`~patron.transforms.features.spec.Feature` names one column of the customer analytic record (CAR): its group,
type, a short formula (``definition``), a description, the *source* it is computed
from and one engine-neutral Ibis expression. Group modules (``financial``,
``product``, ...) declare their features with :mod:`~patron.transforms.features.spec`
(never importing this module), most of them as parametrised families (measure ×
period × category ...), and :func:`registry` imports the groups and collects them.

Sources (built point-in-time by :mod:`patron.transforms.features.context`):

- row sources (``orders``, ``lines``, ``purchase_days``, ``events``, ``surveys``,
  ``records``): the expression is an aggregate over the customer's rows;
- per-customer sources (``rfm``): the expression is a value of the customer's one row;
- ``derived``: the expression reads other features of the same record (ratios, stages,
  preferences), so every number is defined once and reused by name.

:func:`build_car` aggregates each row source once (all of its features in one
``GROUP BY``), joins the aggregates on ``customer_key`` and adds the derived features.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from patron.contract import CONTRACT
from patron.transforms.days import TimeLike
from patron.transforms.features import (
    demographics,
    engagement,
    financial,
    first_order,
    lifecycle,
    preferences,
    product,
    satisfaction,
    seasonal,
)
from patron.transforms.features.context import (
    COLUMN_TABLES,
    INPUT_TABLES,
    PER_CUSTOMER_SOURCES,
    ROW_SOURCES,
    SOURCE_TABLES,
    Materialise,
    as_of_date,
    build_sources,
)
from patron.transforms.features.spec import DERIVED, GROUPS, Feature

__all__ = ["DERIVED", "GROUPS", "Feature", "build_car", "dependencies", "features_by_group", "get_feature",
           "latest_record", "registry", "required_tables"]

@cache
def registry() -> tuple[Feature, ...]:
    """Every feature of the CAR, in data-dictionary order (by group, then as declared).

    Raises
    ------
    ValueError
        When two features share a name.
    """
    modules = (financial, product, engagement, preferences, lifecycle, first_order, seasonal, satisfaction,
               demographics)
    features = tuple(f for module in modules for f in module.FEATURES)
    seen: set[str] = set()
    duplicates = sorted({f.name for f in features if f.name in seen or seen.add(f.name)})
    if duplicates:
        raise ValueError(f"features declared twice: {duplicates}")
    return tuple(sorted(features, key=lambda f: GROUPS.index(f.group)))


def features_by_group() -> dict[str, list[Feature]]:
    """The registry as ``{group: [features]}``, in :data:`GROUPS` order."""
    grouped: dict[str, list[Feature]] = {group: [] for group in GROUPS}
    for f in registry():
        grouped[f.group].append(f)
    return grouped


def get_feature(name: str) -> Feature:
    """The registered feature called ``name``."""
    for f in registry():
        if f.name == name:
            return f
    raise KeyError(f"no CAR feature named {name!r}")


def _typed(f: Feature, table: ir.Table) -> ir.Value:
    return f.expr(table).cast(f.dtype)


def _aggregate(source: str, table: ir.Table, features: list[Feature]) -> ir.Table:
    """One row per customer with ``features`` computed from ``source``."""
    values = {f.name: _typed(f, table) for f in features}
    if source in PER_CUSTOMER_SOURCES:
        return table.select("customer_key", **values)
    return table.group_by("customer_key").aggregate(**values)


@cache
def _record_schema() -> ibis.Schema:
    """The CAR's columns and types: what a derived feature's expression may read."""
    columns = {"customer_key": "string", "as_of_date": "date"}
    columns.update({f.name: f.dtype for f in registry()})
    return ibis.schema(columns)


@cache
def dependencies(name: str) -> frozenset[str]:
    """The features a derived feature reads (found in its expression); empty for source features."""
    f = get_feature(name)
    if f.source != DERIVED:
        return frozenset()
    expr = f.expr(ibis.table(_record_schema(), name="car"))
    fields = {node.name for node in expr.op().find(ops.Field)}
    return frozenset(fields - {"customer_key", "as_of_date"})


@cache
def _source_schemas() -> dict[str, ibis.Schema]:
    """The columns of every CAR source, from the sources built over unbound contract tables."""
    tables = {name: ibis.table(CONTRACT[name].schema(), name=name) for name in INPUT_TABLES}
    sources = build_sources(tables, as_of=as_of_date("2000-01-01"))
    return {name: table.schema() for name, table in sources.items()}


@cache
def required_tables(name: str) -> frozenset[str]:
    """The optional contract tables feature ``name`` cannot be computed without.

    A row source's own table (``engagement_events``, ``surveys``, ``customers``), the
    tables of the source columns its expression reads (a product's category needs
    ``products``, returned units need ``returns``), and for a derived feature what the
    features it reads need. :func:`build_car` makes the feature NULL when one is missing.
    """
    f = get_feature(name)
    if f.source == DERIVED:
        return frozenset().union(*(required_tables(n) for n in dependencies(name)))
    needs = {SOURCE_TABLES[f.source]} if f.source in SOURCE_TABLES else set()
    expr = f.expr(ibis.table(_source_schemas()[f.source], name=f.source))
    needs |= {COLUMN_TABLES[node.name] for node in expr.op().find(ops.Field) if node.name in COLUMN_TABLES}
    return frozenset(needs)


def _depth(name: str) -> int:
    """0 for source features, 1 + the deepest dependency for derived ones."""
    needs = dependencies(name)
    return 0 if not needs and get_feature(name).source != DERIVED else 1 + max((_depth(n) for n in needs), default=0)


def _selected(names: Iterable[str] | None) -> tuple[list[Feature], set[str]]:
    """The features to compute: ``names`` and what they read; and the names to return."""
    if names is None:
        everything = [f.name for f in registry()]
        return list(registry()), set(everything)
    wanted = set(names)
    unknown = wanted - {f.name for f in registry()}
    if unknown:
        raise KeyError(f"unknown CAR features: {sorted(unknown)}")
    needed, todo = set(), list(wanted)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(dependencies(name))
    return [f for f in registry() if f.name in needed], wanted


def _population(sources: Mapping[str, ir.Table]) -> ir.Table:
    """Every customer known before as_of: a buyer, or a registered customer record."""
    buyers = sources["orders"].select("customer_key")
    registered = sources["records"].select("customer_key")
    return buyers.union(registered, distinct=True)


def _fill(f: Feature, column: ir.Value) -> ir.Value:
    return column if f.fill is None else column.fill_null(ibis.literal(f.fill, type=f.dtype))


def build_car(
    tables: Mapping[str, ir.Table],
    *,
    as_of: TimeLike,
    reporting_currency: str | None = None,
    features: Iterable[str] | None = None,
    materialise: Materialise | None = None,
    missing: Iterable[str] = (),
) -> ir.Table:
    """The customer analytic record at ``as_of``: one row per customer, every registered feature.

    Parameters
    ----------
    tables
        The contract tables ``orders``, ``order_lines``, ``returns``, ``order_costs``,
        ``fx_rates``, ``products``, ``customers``, ``engagement_events`` and ``surveys``
        (empty tables where a source has none), plus ``identity_map`` and ``order_keys``
        after ``patron resolve``; without them customers are keyed provisionally
        (:func:`patron.transforms.keys.provisional_customer_key`, records by
        ``source:customer_id``).
    as_of
        The as-of date. Only data strictly before its UTC midnight counts (orders
        placed, returns received, events, surveys, customer records signed up); a time
        of day is dropped, so the record of a date never depends on the hour it runs.
    reporting_currency
        Orders in this currency convert at 1 when ``fx_rates`` has no rate for it.
    features
        Names of the features to return (default: all); the features a derived one
        reads are computed with it.
    materialise
        Optional ``(name, table) -> table`` that stores each source (``orders``,
        ``lines``, ...) and returns the stored table, e.g. a write to a scratch table
        of the warehouse read back. Without it the result is one lazy expression; with
        it the query plans stay small, which matters on Spark (tens of seconds of
        planning for the single expression). ``table.cache()`` does on DuckDB, but not
        on Spark: Ibis 12's PySpark ``cache`` does not register in-memory tables (the
        season calendar here) before running.
    missing
        Contract tables that hold no data (absent or empty): every feature that needs one
        (:func:`required_tables`) is NULL for everyone, not 0, since nothing is known.

    Returns
    -------
    ir.Table
        ``customer_key``, ``as_of_date`` (date) and one column per feature, in registry
        order; one row per customer with an order or a customer record before ``as_of``.
    """
    day = as_of_date(as_of)
    sources = build_sources(tables, as_of=day, reporting_currency=reporting_currency, materialise=materialise)
    chosen, returned = _selected(features)
    car = _population(sources)
    for source in (*ROW_SOURCES, *PER_CUSTOMER_SOURCES):
        wanted = [f for f in chosen if f.source == source]
        if wanted:
            key = f"_key_{source}"
            aggregate = _aggregate(source, sources[source], wanted).rename({key: "customer_key"})
            car = car.left_join(aggregate, car.customer_key == aggregate[key])  # one join chain, one SELECT
    base = [f for f in chosen if f.source != DERIVED]
    car = car.select("customer_key", as_of_date=ibis.literal(day, type="date"),
                     **{f.name: _fill(f, car[f.name]) for f in base})
    derived = [f for f in chosen if f.source == DERIVED]
    for depth in sorted({_depth(f.name) for f in derived}):
        car = car.mutate(**{f.name: _typed(f, car) for f in derived if _depth(f.name) == depth})
    unknown = set(missing)
    nulls = {f.name: ibis.null(f.dtype) for f in chosen if f.name in returned and required_tables(f.name) & unknown}
    if nulls:
        car = car.mutate(**nulls)
    return car.select("customer_key", "as_of_date", *[f.name for f in chosen if f.name in returned])


def latest_record(car: ir.Table) -> ir.Table:
    """The rows of the latest as-of date of a ``car`` table that holds several dates.

    A table without ``as_of_date`` (one record, e.g. built in memory) is returned as it is.
    """
    if "as_of_date" not in car.columns:
        return car
    return car.filter(car.as_of_date == car.as_of_date.max())
