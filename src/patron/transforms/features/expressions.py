"""Small expression builders the feature groups share: conditional sums, safe ratios, arg-max labels.

Conditional aggregation (``cond.ifelse(x, 0).sum()``) rather than a pivot keeps the CAR
one ``GROUP BY`` per source on every engine; ratios divide by ``NULLIF(den, 0)``
because Spark 4 (ANSI mode) raises on a division by zero where DuckDB returns NULL.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

#: period suffix -> days before as_of (None: all history before as_of)
PERIODS: dict[str, int | None] = {"90d": 90, "365d": 365, "all": None}


def period_text(period: str) -> str:
    """The period in words, for definitions."""
    days = PERIODS[period]
    return "all history before as_of" if days is None else f"the {days} days before as_of"


def in_period(table: ir.Table, period: str) -> ir.BooleanValue:
    """Rows of ``table`` (with ``days_ago``, never NULL in the sources that use periods) inside ``period``."""
    days = PERIODS[period]
    return table.days_ago.notnull() if days is None else table.days_ago <= days


def sum_if(condition: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericScalar:
    """Sum of ``value`` over the rows meeting ``condition`` (0 when none does)."""
    return condition.ifelse(value, 0).sum()


def count_if(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """Number of rows meeting ``condition``."""
    return condition.ifelse(1, 0).sum()


def ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """``numerator / denominator``, NULL when the denominator is 0 or NULL (on every engine)."""
    return numerator.cast("float64") / denominator.cast("float64").nullif(0.0)


def label_of_max(values: Mapping[str, ir.NumericValue]) -> ir.StringValue:
    """The label of the largest positive value (the first listed wins a tie); NULL when none is positive."""
    top = ibis.greatest(*values.values())
    cases = [((value == top) & (value > 0), label) for label, value in values.items()]
    return ibis.cases(*cases, else_=ibis.null("string"))


def slug(label: str) -> str:
    """A label as part of a column name: 'rose gold' -> 'rose_gold', 'DE' -> 'de'."""
    return label.lower().replace(" ", "_").replace("-", "_")
