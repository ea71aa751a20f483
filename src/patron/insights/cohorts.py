"""Cohorts for the profiler: a token (from a URL, the CLI or Python) as a filter over the customers.

A cohort token is one of (tried in this order):

* an **audience name** from ``patron.toml`` (:mod:`patron.activation.audiences`): the customers its
  filter selects (consent is not applied: the profile is about who matches, not who may be mailed);
* ``acquired:PERIOD``: an **acquisition cohort**, customers whose first order falls in a month of
  ``PERIOD`` (``acquired:2024-03``, ``acquired:2024-Q1``, ``acquired:2024``, ``acquired:2024-01..2024-06``);
* ``column:value`` over a column of the profile base (segments, scores and the customer analytic
  record, plus ``market``): ``value_tier:top_1``, ``lifecycle_stage:lapsed``, ``market:DE``;
  ``column:a,b`` keeps either value. The value is read as the column's type (a number, true/false);
* a **raw condition** in the audience condition language, written as in ``patron.toml`` (a TOML
  array): ``["clv_12m", ">=", 100]`` or ``[["value_tier", "=", "top_1"], ["market", "=", "DE"]]``.
  It goes through the audience language's own checks (:func:`patron.activation.audiences.condition`):
  no user text reaches SQL.

The **profile base** (:func:`cohort_base`) is one row per customer of the customer analytic record
(``car``) at its latest as-of date, with the columns of ``segments`` and ``scores`` it lacks and
``market`` (the preferred country, else the home country). Only tables a serving version publishes
are read, so the same code runs on the warehouse and on a version's Parquet snapshot.

A token that is none of these raises :class:`CohortError` naming it and listing what is accepted.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from patron.activation.audiences import OPERATORS, audience_base, audience_filter, select_audience
from patron.config import AudienceDefinition, Settings
from patron.errors import ConfigError, NotConfigured, Unprocessable

if TYPE_CHECKING:
    from patron.engine import Warehouse

__all__ = [
    "ACQUIRED_PREFIX", "Cohort", "CohortError", "Period", "base_schema", "cohort_base", "cohort_members",
    "empty_cohort_message", "latest_as_of", "parse_period", "resolve_cohort", "resolve_cohorts",
]

#: Prefix of an acquisition-cohort token.
ACQUIRED_PREFIX = "acquired:"
#: The most cohorts one profile compares.
MAX_COHORTS = 4
#: Columns named first in the help of a bad ``column:value`` token (any base column is accepted).
SUGGESTED_COLUMNS = ("value_tier", "rfm_segment", "lifecycle_stage", "strategy_cell", "market", "home_country",
                     "preferred_category", "first_order_channel")
_PART = re.compile(r"^(\d{4})(?:-(?:(\d{2})(?:-(\d{2}))?|[Qq]([1-4])))?$")


class CohortError(Unprocessable):
    """A cohort or period token that cannot be read; the message names the token (HTTP 422)."""


@dataclass(frozen=True)
class Cohort:
    """One resolved cohort: the token as given, what kind it is, and its filter over the profile base.

    ``kind`` is ``audience``, ``acquired``, ``column`` or ``condition``; ``definition`` says in words
    what the filter keeps (for tables and tooltips). ``columns`` are the base columns the filter reads
    and ``where`` builds it over a base holding them (:func:`cohort_base`); the token was checked when
    the cohort was made, so ``where`` does not fail on a bad token.
    """

    token: str
    kind: str
    definition: str
    columns: frozenset[str]
    where: Callable[[ir.Table], ir.BooleanValue]


@dataclass(frozen=True)
class Period:
    """A span of days ``[start, end)`` read from a token such as ``2025-01..2025-06``."""

    label: str
    start: dt.date
    end: dt.date

    @property
    def last_day(self) -> dt.date:
        """The last day inside the period."""
        return self.end - dt.timedelta(days=1)


# -- periods ----------------------------------------------------------------------------------------
def _part_bounds(text: str, token: str) -> tuple[dt.date, dt.date, bool]:
    """First day, first day after, and whether ``text`` is whole months (YYYY, YYYY-MM, YYYY-Qn, YYYY-MM-DD)."""
    match = _PART.match(text.strip())
    if not match:
        raise CohortError(f"bad period {token!r}: {text!r} is not YYYY, YYYY-MM, YYYY-Qn or YYYY-MM-DD")
    year, month, day, quarter = match.groups()
    try:
        if day is not None:
            start = dt.date(int(year), int(month), int(day))
            return start, start + dt.timedelta(days=1), False
        if month is not None:
            start = dt.date(int(year), int(month), 1)
            return start, _add_months(start, 1), True
    except ValueError:
        raise CohortError(f"bad period {token!r}: {text!r} is not a calendar date") from None
    if quarter is not None:
        start = dt.date(int(year), 3 * int(quarter) - 2, 1)
        return start, _add_months(start, 3), True
    start = dt.date(int(year), 1, 1)
    return start, dt.date(int(year) + 1, 1, 1), True


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(token: str) -> Period:
    """A period token: ``PART`` or ``PART..PART`` where a part is YYYY, YYYY-MM, YYYY-Qn or YYYY-MM-DD.

    ``2025-01..2025-06`` is the first half of 2025 (both ends included). A token that cannot be read,
    or ends before it starts, raises :class:`CohortError` naming it.
    """
    first, sep, last = token.partition("..")
    start, _, _ = _part_bounds(first, token)
    _, end, _ = _part_bounds(last if sep else first, token)
    if end <= start:
        raise CohortError(f"bad period {token!r}: it ends before it starts")
    return Period(token, start, end)


# -- the base ---------------------------------------------------------------------------------------
def latest_as_of(warehouse: Warehouse) -> dt.date | None:
    """The latest as-of date of ``car`` (None when it has no dates); NotConfigured without a ``car``."""
    if not warehouse.has_table("car"):
        raise NotConfigured("no customer analytic record (table car): run `patron features` first")
    car = warehouse.table("car")
    if "as_of_date" not in car.columns:
        return None
    value = warehouse.scalar(car.as_of_date.max())
    return None if value is None else dt.date.fromisoformat(str(value)[:10])


def _sources(warehouse: Warehouse, as_of: dt.date | None) -> list[ir.Table]:
    """``car`` as of ``as_of``, then ``segments`` and ``scores`` where the warehouse has them."""
    car = warehouse.table("car")
    tables = [car if as_of is None else car.filter(car.as_of_date == ibis.literal(as_of, type="date"))]
    return tables + [warehouse.table(name) for name in ("segments", "scores") if warehouse.has_table(name)]


def base_schema(warehouse: Warehouse) -> ibis.Schema:
    """The profile base's columns: those of ``car``, the new ones of ``segments`` and ``scores``, and ``market``."""
    columns: dict[str, Any] = {}
    for table in _sources(warehouse, None):
        columns |= {name: dtype for name, dtype in table.schema().items() if name not in columns}
    columns.setdefault("market", "string")
    return ibis.schema(columns)


def cohort_base(warehouse: Warehouse, as_of: dt.date | None, columns: frozenset[str] | set[str]) -> ir.Table:
    """``customer_key`` and ``columns`` of the profile base, one row per customer of ``car`` as of ``as_of``.

    Only the tables holding ``columns`` are joined: a base of a few columns is quick to build and to query.
    """
    car, *others = _sources(warehouse, as_of)
    market = "market" in columns and "market" not in car.columns
    country = [c for c in ("preferred_country", "home_country") if c in car.columns] if market else []
    base = car.select("customer_key", *sorted({c for c in columns if c in car.columns} | set(country)))
    for other in others:
        extra = sorted(c for c in columns if c in other.columns and c not in base.columns)
        if extra:
            base = base.left_join(other.select("customer_key", *extra), "customer_key").select(*base.columns, *extra)
    if market:
        base = base.mutate(market=ibis.coalesce(*[base[c] for c in country]) if country else ibis.null("string"))
    return base


def cohort_members(warehouse: Warehouse, cohorts: list[Cohort], as_of: dt.date | None) -> ir.Table:
    """``(customer_key, cohort)`` of every cohort's customers, ``cohort`` its position (a customer may be in two)."""
    base = cohort_base(warehouse, as_of, frozenset().union(*(c.columns for c in cohorts)))
    parts = [base.filter(c.where(base)).select("customer_key", cohort=ibis.literal(i, type="int64"))
             for i, c in enumerate(cohorts)]
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def empty_cohort_message(warehouse: Warehouse, cohort: Cohort, as_of: dt.date | None) -> str:
    """Why ``cohort`` is refused: it holds no customer; for ``column:value`` on text, the values the column holds."""
    message = f"cohort {cohort.token!r} has no customers in the customer record" + (f" as of {as_of}" if as_of
                                                                                    else "")
    if cohort.kind == "column" and len(cohort.columns) == 1:
        (column,) = cohort.columns
        base = cohort_base(warehouse, as_of, cohort.columns)
        if base[column].type().is_string():
            values = base.filter(base[column].notnull()).select(column).distinct().order_by(column).limit(13)
            held = list(warehouse.to_pandas(values)[column])
            listed = ", ".join(map(str, held[:12])) + (", ..." if len(held) > 12 else "")
            message += f"; {column} holds {listed or 'no value'}"
    return message


# -- tokens -----------------------------------------------------------------------------------------
def accepted(settings: Settings) -> str:
    """What a cohort token may be, in a sentence (for error messages and help texts)."""
    names = ", ".join(a.name for a in settings.audiences) or "none defined"
    return (f"an audience ({names}); column:value over a segment, score or CAR column (e.g. "
            f"{', '.join(SUGGESTED_COLUMNS[:5])}); acquired:YYYY-MM, acquired:YYYY-Qn or acquired:YYYY; "
            'or a condition in the audience language such as ["clv_12m", ">=", 100]')


def resolve_cohorts(warehouse: Warehouse, tokens: list[str] | tuple[str, ...],
                    settings: Settings | None = None) -> list[Cohort]:
    """Every token as a checked :class:`Cohort`: between 1 and :data:`MAX_COHORTS`, no token twice."""
    settings = settings or warehouse.settings
    if not tokens or len(tokens) > MAX_COHORTS:
        raise CohortError(f"give 1 to {MAX_COHORTS} cohorts, not {len(tokens)}")
    twice = sorted({t for t in tokens if list(tokens).count(t) > 1})
    if twice:
        raise CohortError(f"cohort {twice[0]!r} is given twice")
    schema = ibis.table(base_schema(warehouse), name="profile_base")
    return [resolve_cohort(warehouse, token, schema, settings) for token in tokens]


def resolve_cohort(warehouse: Warehouse, token: str, schema: ir.Table, settings: Settings | None = None) -> Cohort:
    """The :class:`Cohort` of ``token``, checked against ``schema`` (a table of the base's columns, unbound)."""
    settings = settings or warehouse.settings
    token = token.strip()
    if not token:
        raise CohortError(f"an empty cohort; a cohort is {accepted(settings)}")
    for audience in settings.audiences:
        if audience.name == token:
            return Cohort(token, "audience", audience.description or f"audience {token}", frozenset(),
                          _audience_where(warehouse, audience, settings))
    if token.startswith("["):
        return _condition_cohort(warehouse, token, _read_conditions(token, settings), schema, settings)
    if token.lower().startswith(ACQUIRED_PREFIX):
        return _acquired(token, schema)
    column, sep, value = token.partition(":")
    if sep and column and value:
        return _column_cohort(warehouse, token, column.strip(), value.strip(), schema, settings)
    raise CohortError(f"unknown cohort {token!r}; a cohort is {accepted(settings)}")


def _audience_where(warehouse: Warehouse, audience: AudienceDefinition,
                    settings: Settings) -> Callable[[ir.Table], ir.BooleanValue]:
    """The filter of a defined audience: the customers it selects (its market and horizon; consent not applied)."""
    def where(base: ir.Table) -> ir.BooleanValue:
        table = audience_base(warehouse, settings, horizon=audience.horizon_months)
        return base.customer_key.isin(select_audience(table, audience, market=audience.market).customer_key)
    return where


def _read_conditions(token: str, settings: Settings) -> list[list[Any]]:
    """A raw condition token (TOML array) as a list of ``[column, operator, value]`` conditions."""
    try:
        where = tomllib.loads(f"where = {token}")["where"]
    except tomllib.TOMLDecodeError as exc:
        raise CohortError(f"cohort {token!r} is not a condition in the audience language ({exc}); "
                          f"a cohort is {accepted(settings)}") from None
    if where and isinstance(where[0], str):  # one condition, not a list of them
        where = [where]
    if not where or not all(isinstance(c, list) for c in where):
        raise CohortError(f"cohort {token!r}: write a condition as [column, operator, value] "
                          f"(operators: {', '.join(OPERATORS)})")
    return where


def _is_share(cond: list[Any]) -> bool:
    return len(cond) > 1 and isinstance(cond[1], str) and cond[1].lower() in ("top share", "bottom share")


def _condition_cohort(warehouse: Warehouse, token: str, where: list[list[Any]], schema: ir.Table,
                      settings: Settings, definition: str | None = None, kind: str = "condition") -> Cohort:
    """Conditions over the base; over the audience base (``clv``, ``marketing_consent`` ...) for columns it lacks.

    The audience language checks them (:func:`patron.activation.audiences.audience_filter`); its error
    becomes a :class:`CohortError` naming the token.
    """
    audience = AudienceDefinition(token, where=tuple(tuple(c) for c in where))
    columns = frozenset(c[0] for c in where if c and isinstance(c[0], str))
    definition = definition or " and ".join(" ".join(str(p) for p in c) for c in where)
    try:
        if not columns <= set(schema.columns):
            table = audience_base(warehouse, settings)
            audience_filter(table, audience)
            return Cohort(token, kind, definition, frozenset(),
                          lambda base: base.customer_key.isin(select_audience(table, audience).customer_key))
        audience_filter(schema, audience)
    except ConfigError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise CohortError(f"cohort {token!r}: {reason}; a cohort is {accepted(settings)}") from None
    if any(map(_is_share, where)):
        return Cohort(token, kind, definition, columns,
                      lambda base: base.customer_key.isin(select_audience(base, audience).customer_key))
    return Cohort(token, kind, definition, columns, lambda base: audience_filter(base, audience))


def _typed(value: str, dtype: Any) -> Any:
    """``value`` (text from a token) as the column type wants: a number, true/false, or the text."""
    if dtype.is_boolean() and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if dtype.is_integer() and re.fullmatch(r"-?\d+", value):
        return int(value)
    if dtype.is_numeric() and re.fullmatch(r"-?\d+(\.\d*)?([eE]-?\d+)?", value):
        return float(value)
    return value


def _column_cohort(warehouse: Warehouse, token: str, column: str, value: str, schema: ir.Table,
                   settings: Settings) -> Cohort:
    """``column:value`` (or ``column:a,b``) as an ``=`` (``in``) condition of the audience language."""
    if column not in schema.columns or column == "customer_key":
        raise CohortError(f"unknown cohort {token!r}: no column {column!r} (columns such as "
                          f"{', '.join(c for c in SUGGESTED_COLUMNS if c in schema.columns)}, or any other "
                          f"segment, score or CAR column); a cohort is {accepted(settings)}")
    dtype = schema[column].type()
    values = [_typed(v.strip(), dtype) for v in value.split(",")]
    cond = [column, "=", values[0]] if len(values) == 1 else [column, "in", values]
    return _condition_cohort(warehouse, token, [cond], schema, settings, kind="column",
                             definition=f"{column} = {value}" if len(values) == 1 else f"{column} in {value}")


def _acquired(token: str, schema: ir.Table) -> Cohort:
    """``acquired:PERIOD``: customers whose first order's (UTC) month lies in the whole months of PERIOD."""
    text = token[len(ACQUIRED_PREFIX):]
    period = parse_period(text)
    if not (period.start.day == 1 and period.end.day == 1):
        raise CohortError(f"cohort {token!r}: acquisition cohorts are by month (acquired:YYYY-MM, YYYY-Qn, YYYY "
                          "or a range of months)")
    columns = frozenset({"first_order_year", "first_order_month"})
    if not columns <= set(schema.columns):
        raise CohortError(f"cohort {token!r}: the customer record has no first-order month")
    first = period.start.year * 12 + period.start.month - 1
    after = period.end.year * 12 + period.end.month - 1

    def where(base: ir.Table) -> ir.BooleanValue:
        month = base.first_order_year * 12 + base.first_order_month - 1
        return (month >= ibis.literal(first)) & (month < ibis.literal(after))
    return Cohort(token, "acquired", f"first order in {text}", columns, where)
