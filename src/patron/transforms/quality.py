"""Data-quality checks on the ingested tables, with thresholds and severities.

Each check is one engine-neutral Ibis expression that reduces a table to a metric (a
share of rows, mostly), compared with a threshold from ``QualitySettings`` or the
module defaults below. A failing *blocking* check stops modelling; a failing
*warning* is reported and the pipeline goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron.config import QualitySettings
from patron.engine import Warehouse
from patron.tables import QUALITY_REPORT
from patron.transforms.text import trim

BLOCKING, WARNING = "blocking", "warning"

#: Columns whose null rate matters to the analysis, and the severity of too many nulls.
NULL_RATE_COLUMNS: dict[str, dict[str, str]] = {
    "orders": {"ordered_at": BLOCKING, "country": WARNING, "currency": BLOCKING, "channel": WARNING},
    "order_lines": {"quantity": BLOCKING, "unit_price": BLOCKING, "sku": WARNING},
    "customers": {"email": WARNING, "country": WARNING},
}
#: Thresholds beyond ``QualitySettings`` (shares of rows).
MAX_FUTURE_ORDER_RATE = 0.0
MAX_LINES_WITHOUT_ORDERS_RATE = 0.0
MAX_ORDERS_WITHOUT_RATES_RATE = 0.0
MAX_RETURNS_BEFORE_ORDER_RATE = 0.0
#: Scale of the median absolute deviation that makes it a robust standard deviation (normal data).
MAD_SCALE = 1.4826
REQUIRED_TABLES = ("orders", "order_lines")
OPTIONAL_TABLES = ("customers", "fx_rates", "returns")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: the metric, the threshold it must not exceed and a message."""

    name: str
    table: str
    severity: str
    metric: float
    threshold: float
    passed: bool
    message: str


@dataclass
class QualityReport:
    """The results of one validation run."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == BLOCKING and not r.passed]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == WARNING and not r.passed]

    @property
    def passed(self) -> bool:
        """True when no blocking check failed."""
        return not self.blocking_failures

    def to_frame(self) -> pd.DataFrame:
        columns = [f for f in CheckResult.__dataclass_fields__]
        return pd.DataFrame([asdict(r) for r in self.results], columns=columns)

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)


def _rate(part: ir.IntegerScalar, whole: ir.IntegerScalar) -> ir.Table:
    """A one-row table holding ``part / whole`` (0 for an empty table) as ``metric``.

    ``part`` and ``whole`` often come from different tables, so each becomes a
    one-row table and the two are cross-joined.
    """
    both = part.name("part").as_table().cross_join(whole.name("whole").as_table())
    share = both.part.fill_null(0).cast("float64") / both.whole.cast("float64")
    return both.select(metric=ibis.ifelse(both.whole > 0, share, 0.0))


def _result(name: str, table: str, severity: str, metric: float, threshold: float, what: str) -> CheckResult:
    passed = metric <= threshold
    verdict = "ok" if passed else f"{severity}: above the threshold {threshold:.4g}"
    return CheckResult(name, table, severity, metric, threshold, passed, f"{what}: {metric:.4g} ({verdict})")


# -- the checks as expressions (each a Table → scalar) --------------------------------
def null_rate(table: ir.Table, column: str) -> ir.Table:
    """Share of rows where ``column`` is NULL."""
    return _rate(table[column].isnull().sum(), table.count())


def future_order_rate(orders: ir.Table, now: dt.datetime, tolerance_days: float = 0.0) -> ir.Table:
    """Share of orders placed more than ``tolerance_days`` after ``now`` (the run's clock, not the last order)."""
    limit = latest_allowed(now, tolerance_days)
    return _rate((orders.ordered_at > ibis.literal(limit, type="timestamp('UTC')")).sum(), orders.count())


def latest_allowed(now: dt.datetime, tolerance_days: float) -> dt.datetime:
    """The latest time an order or event may carry: ``now`` (UTC) plus the tolerance.

    The service refuses later events, and ingest may refuse later rows, with this bound;
    ``now`` without a time zone is read as UTC.
    """
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC) + dt.timedelta(days=tolerance_days)


def order_values(orders: ir.Table, lines: ir.Table) -> ir.Table:
    """Gross value of each order with lines: sum of quantity × unit price − discount, with its currency."""
    value = lines.quantity * lines.unit_price - lines.discount.fill_null(0)
    per_order = lines.group_by("order_id").aggregate(
        value=value.sum(), n_lines=lines.count(), units=lines.quantity.sum(),
        first_sku=lines.sku.min(), last_sku=lines.sku.max(),
    )
    return orders.join(per_order, "order_id")


def duplicate_order_rate(orders: ir.Table, lines: ir.Table) -> ir.Table:
    """Share of orders that repeat another: same source, buyer and time, identical lines.

    Lines are compared by a fingerprint (count, units, value, first and last sku),
    which two different baskets share only by coincidence.
    """
    valued = order_values(orders, lines)
    buyer = ibis.coalesce(valued.customer_id, trim(valued.email).lower(), valued.loyalty_id)
    same = [valued.source, buyer.name("buyer"), valued.ordered_at, valued.n_lines, valued.units,
            valued.value.round(2).name("rounded"), valued.first_sku, valued.last_sku]
    groups = valued.group_by(same).aggregate(n=valued.count())
    return _rate((groups.n - 1).sum(), orders.count())


def spend_outlier_rate(orders: ir.Table, lines: ir.Table, z: float) -> ir.Table:
    """Share of orders worth more than median + z × robust deviation of their currency.

    The robust deviation is the median absolute deviation times ``MAD_SCALE``;
    a currency whose deviation is zero has no outliers.
    """
    valued = order_values(orders, lines).select("order_id", "currency", "value")
    centre = valued.group_by("currency").aggregate(median=valued.value.median())
    spread = valued.join(centre, "currency")
    spread = spread.mutate(dev=(spread.value - spread.median).abs())
    mad = spread.group_by("currency").aggregate(mad=spread.dev.median())
    scored = spread.join(mad, "currency")
    outlier = (scored.mad > 0) & (scored.value > scored.median + z * MAD_SCALE * scored.mad)
    return _rate(outlier.sum(), orders.count())


def orders_without_lines_rate(orders: ir.Table, lines: ir.Table) -> ir.Table:
    """Share of orders that have no order line."""
    lonely = orders.anti_join(lines.select("order_id").distinct(), "order_id")
    return _rate(lonely.count(), orders.count())


def lines_without_orders_rate(orders: ir.Table, lines: ir.Table) -> ir.Table:
    """Share of order lines whose order is not in ``orders``."""
    orphans = lines.anti_join(orders.select("order_id"), "order_id")
    return _rate(orphans.count(), lines.count())


def orders_without_rates_rate(orders: ir.Table, fx: ir.Table | None, reporting: str) -> ir.Table:
    """Share of orders in a foreign currency with no exchange rate on or before their day.

    A rate holds until the next one, so an order is covered once its currency's first
    rate is dated on or before the order's day.
    """
    foreign = orders.filter(orders.currency != reporting)
    if fx is None:
        return _rate(foreign.count(), orders.count())
    first = fx.group_by("currency").aggregate(first_date=fx.date.min())
    joined = foreign.left_join(first, "currency")
    missing = joined.first_date.isnull() | (joined.first_date > joined.ordered_at.date())
    return _rate(missing.sum(), orders.count())


def returns_before_order_rate(orders: ir.Table, returns: ir.Table) -> ir.Table:
    """Share of returns received before their order was placed."""
    joined = returns.join(orders.select("order_id", "ordered_at"), "order_id")
    return _rate((joined.returned_at < joined.ordered_at).sum(), returns.count())


# -- running them ---------------------------------------------------------------------
def run_checks(
    warehouse: Warehouse, settings: QualitySettings, now: dt.datetime | None = None
) -> QualityReport:
    """Run every check on the warehouse's tables and collect the results.

    A missing ``orders`` or ``order_lines`` table is a blocking failure; other missing
    tables are warnings and their checks are skipped.
    """
    now = now or dt.datetime.now(dt.UTC)
    tables = {n: warehouse.table(n) for n in REQUIRED_TABLES + OPTIONAL_TABLES if warehouse.has_table(n)}
    report = QualityReport()
    for name in REQUIRED_TABLES + OPTIONAL_TABLES:
        if name not in tables:
            severity = BLOCKING if name in REQUIRED_TABLES else WARNING
            report.results.append(CheckResult(f"table_present.{name}", name, severity, 1.0, 0.0, False,
                                              f"table {name} is not in the warehouse ({severity})"))

    def run(name: str, table: str, severity: str, threshold: float, what: str,
            metric: Callable[[], ir.Table]) -> None:
        value = float(warehouse.to_pandas(metric())["metric"].iloc[0])
        report.results.append(_result(name, table, severity, value, threshold, what))

    for table, columns in NULL_RATE_COLUMNS.items():
        for column, severity in columns.items():
            if table in tables:
                run(f"null_rate.{table}.{column}", table, severity, settings.max_null_rate,
                    f"share of {table}.{column} that is null",
                    lambda t=tables[table], c=column: null_rate(t, c))
    if "orders" in tables:
        orders = tables["orders"]
        tolerance = settings.future_tolerance_days
        run("future_orders", "orders", WARNING, MAX_FUTURE_ORDER_RATE,
            f"share of orders dated after {latest_allowed(now, tolerance):%Y-%m-%d %H:%M} UTC "
            f"(now + [quality] future_tolerance_days = {tolerance:g})",
            lambda: future_order_rate(orders, now, tolerance))
        run("orders_without_rates", "orders", BLOCKING, MAX_ORDERS_WITHOUT_RATES_RATE,
            "share of orders whose currency has no exchange rate on or before the order date",
            lambda: orders_without_rates_rate(orders, tables.get("fx_rates"),
                                              warehouse.settings.reporting_currency))
        if "returns" in tables:
            run("returns_before_order", "returns", WARNING, MAX_RETURNS_BEFORE_ORDER_RATE,
                "share of returns received before their order",
                lambda: returns_before_order_rate(orders, tables["returns"]))
    if "orders" in tables and "order_lines" in tables:
        _order_line_checks(run, tables["orders"], tables["order_lines"], settings)
    return report


def _order_line_checks(run: Callable[..., None], orders: ir.Table, lines: ir.Table,
                       settings: QualitySettings) -> None:
    run("orders_without_lines", "orders", BLOCKING, settings.max_orders_without_lines_rate,
        "share of orders without lines", lambda: orders_without_lines_rate(orders, lines))
    run("lines_without_orders", "order_lines", WARNING, MAX_LINES_WITHOUT_ORDERS_RATE,
        "share of order lines without an order", lambda: lines_without_orders_rate(orders, lines))
    run("duplicate_orders", "orders", WARNING, settings.max_duplicate_order_rate,
        "share of orders repeating another under a different id", lambda: duplicate_order_rate(orders, lines))
    run("spend_outliers", "orders", WARNING, settings.max_outlier_rate,
        f"share of orders above median + {settings.spend_outlier_z:g} robust deviations",
        lambda: spend_outlier_rate(orders, lines, settings.spend_outlier_z))


def write_report(
    warehouse: Warehouse, report: QualityReport, *, checked_at: dt.datetime | None = None
) -> None:
    """Append the report's results to ``quality_report``, stamped with ``checked_at``."""
    frame = report.to_frame()
    frame["checked_at"] = pd.Timestamp(checked_at or dt.datetime.now(dt.UTC))
    frame["metric"] = frame["metric"].astype("float64")
    frame["threshold"] = frame["threshold"].astype("float64")
    frame["passed"] = frame["passed"].astype(bool)
    warehouse.write(QUALITY_REPORT, frame, mode="append")
