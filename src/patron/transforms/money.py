"""Money: currency conversion and gross profit 2 (GP2), defined once, per line and per order.

GP2 of an order = net revenue (price − discount − refunds) − cost of goods kept −
fulfilment costs (shipping, payment, handling, return handling); marketing cost is
excluded. :func:`line_values` computes it per order line and :func:`order_values`
sums the lines, so there is one definition (:func:`gp2`) for every consumer.

Conventions, all point-in-time when ``as_of`` is given:

- an order converts to the reporting currency at the rate valid on its UTC order
  date (a rate holds from its date until the next date for that currency); an order
  with no valid rate gets NULL money, which validation reports;
- NULL ``discount``, ``unit_cost`` and cost columns count as 0 (unknown cost is not
  a reason to lose the order's revenue); validation reports their null rates;
- only orders placed, and returns received, strictly before ``as_of`` count.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from patron.transforms.days import TimeLike, date_day_number, utc_day_number, utc_timestamp_literal

#: Money columns of a line or an order, in the reporting currency.
MONEY_COLUMNS = (
    "gross_revenue",
    "discount",
    "refunds",
    "net_revenue",
    "cogs_kept",
    "fulfilment_cost",
    "return_handling",
    "gp2",
)


def gp2(
    net_revenue: ir.NumericValue,
    cogs_kept: ir.NumericValue,
    fulfilment_cost: ir.NumericValue,
    return_handling: ir.NumericValue,
) -> ir.NumericValue:
    """Gross profit 2: net revenue less cost of goods kept and all fulfilment costs."""
    return net_revenue - cogs_kept - fulfilment_cost - return_handling


def fx_periods(fx_rates: ir.Table) -> ir.Table:
    """The validity period of each exchange rate: from its date until the currency's next one.

    Parameters
    ----------
    fx_rates
        The contract's ``fx_rates``: ``currency``, ``date``, ``rate_to_reporting``.

    Returns
    -------
    ir.Table
        ``currency``, ``valid_from`` (inclusive), ``valid_to`` (exclusive; NULL for the
        latest rate, which holds from then on) and ``rate_to_reporting``.
    """
    window = ibis.window(group_by=fx_rates.currency, order_by=fx_rates.date)
    return fx_rates.select(
        currency=fx_rates.currency,
        valid_from=fx_rates.date,
        valid_to=fx_rates.date.lead().over(window),
        rate_to_reporting=fx_rates.rate_to_reporting,
    )


def daily_rates(fx_rates: ir.Table, *, last_day: ir.IntegerScalar) -> ir.Table:
    """One row per currency and day (UTC day number) with the rate valid that day.

    Rates come at any frequency and hold until the next one; spelling them out per day
    (a few thousand rows per currency) turns the conversion into an equality join,
    which every engine runs as a hash join, instead of a range join.

    Parameters
    ----------
    fx_rates
        The contract's ``fx_rates``.
    last_day
        The last day number to cover (the latest rate holds until then).
    """
    periods = fx_periods(fx_rates)
    from_day = date_day_number(periods.valid_from)
    latest = ibis.greatest(last_day + 1, from_day + 1)
    to_day = ibis.coalesce(date_day_number(periods.valid_to), latest)
    return periods.select(
        periods.currency,
        day=ibis.range(from_day, to_day).unnest(),
        rate_to_reporting=periods.rate_to_reporting,
    )


def order_rates(orders: ir.Table, fx_rates: ir.Table, *, reporting_currency: str | None = None) -> ir.Table:
    """The rate converting each order's money to the reporting currency.

    Parameters
    ----------
    orders
        The contract's ``orders`` (``order_id``, ``currency``, ``ordered_at``).
    fx_rates
        The contract's ``fx_rates``.
    reporting_currency
        When given, orders in this currency convert at 1 if ``fx_rates`` has no rate for it.

    Returns
    -------
    ir.Table
        ``order_id`` and ``rate_to_reporting``, one row per order; the rate is NULL when
        no rate is valid on the order's UTC date (before the currency's first rate).
    """
    dated = orders.select(orders.order_id, orders.currency, day=utc_day_number(orders.ordered_at))
    daily = daily_rates(fx_rates, last_day=dated.day.max())
    joined = dated.left_join(daily, [dated.currency == daily.currency, dated.day == daily.day])
    rate = joined.rate_to_reporting
    if reporting_currency is not None:
        rate = rate.fill_null(ibis.ifelse(joined.currency == reporting_currency, 1.0, ibis.null("float64")))
    return joined.select(joined.order_id, rate_to_reporting=rate.cast("float64"))


def _orders_as_of(orders: ir.Table, as_of: TimeLike | None) -> ir.Table:
    return orders if as_of is None else orders.filter(orders.ordered_at < utc_timestamp_literal(as_of))


def _returns_per_line(returns: ir.Table, as_of: TimeLike | None) -> ir.Table:
    """Returned units, refunds and return handling per order line, received before ``as_of``."""
    if as_of is not None:
        returns = returns.filter(returns.returned_at < utc_timestamp_literal(as_of))
    return returns.group_by(["order_id", "line_no"]).aggregate(
        returned_quantity=returns.quantity.sum(),
        refunds=returns.refund_amount.fill_null(0).sum(),
        return_handling=returns.handling_cost.fill_null(0).sum(),
    )


def _order_fulfilment(order_costs: ir.Table) -> ir.Table:
    """Each order's shipping, payment and handling cost in its own currency (NULL parts as 0)."""
    total = (
        order_costs.shipping_cost.fill_null(0)
        + order_costs.payment_fee.fill_null(0)
        + order_costs.handling_cost.fill_null(0)
    )
    return order_costs.select(order_costs.order_id, fulfilment_total=total.cast("float64"))


def _local_lines(order_lines: ir.Table, returns: ir.Table, as_of: TimeLike | None) -> ir.Table:
    """Order lines with their revenue, returns and cost of goods kept, in the order's currency."""
    returned = _returns_per_line(returns, as_of)
    joined = order_lines.left_join(returned, ["order_id", "line_no"])
    gross = joined.quantity * joined.unit_price
    discount = joined.discount.fill_null(0)
    refunds = joined.refunds.fill_null(0)
    returned_quantity = joined.returned_quantity.fill_null(0)
    return joined.select(
        order_id=joined.order_id,
        line_no=joined.line_no,
        sku=joined.sku,
        quantity=joined.quantity,
        returned_quantity=returned_quantity.cast("int64"),
        gross_revenue=gross.cast("float64"),
        discount=discount.cast("float64"),
        refunds=refunds.cast("float64"),
        net_revenue=(gross - discount - refunds).cast("float64"),
        cogs_kept=((joined.quantity - returned_quantity) * joined.unit_cost.fill_null(0)).cast("float64"),
        return_handling=joined.return_handling.fill_null(0).cast("float64"),
        allocation_base=(gross - discount).cast("float64"),
    )


def _allocate_fulfilment(lines: ir.Table, order_costs: ir.Table) -> ir.Table:
    """Share each order's fulfilment cost over its lines by revenue after discount.

    Lines share in proportion to ``gross_revenue − discount``; when that totals 0 for
    the order (all free items), equally.
    """
    costs = _order_fulfilment(order_costs)
    lines = lines.left_join(costs, "order_id").drop("order_id_right")
    order = ibis.window(group_by=lines.order_id)
    lines = lines.mutate(
        order_base=lines.allocation_base.sum().over(order),
        order_line_count=lines.line_no.count().over(order),
    )
    share = ibis.ifelse(
        lines.order_base == 0,
        1.0 / lines.order_line_count,
        lines.allocation_base / lines.order_base,
    )
    fulfilment = (lines.fulfilment_total.fill_null(0) * share).cast("float64")
    return lines.mutate(fulfilment_cost=fulfilment).drop(
        "fulfilment_total", "order_base", "order_line_count", "allocation_base"
    )


def line_values(
    orders: ir.Table,
    order_lines: ir.Table,
    returns: ir.Table,
    order_costs: ir.Table,
    fx_rates: ir.Table,
    *,
    as_of: TimeLike | None = None,
    reporting_currency: str | None = None,
) -> ir.Table:
    """Revenue, costs and GP2 of every order line, in the reporting currency.

    Parameters
    ----------
    orders, order_lines, returns, order_costs, fx_rates
        The contract tables of those names.
    as_of
        When given, only orders placed and returns received strictly before it count.
    reporting_currency
        Orders in this currency convert at 1 when ``fx_rates`` has no rate for it.

    Returns
    -------
    ir.Table
        One row per line of a (kept) order: ``order_id``, ``line_no``, ``sku``,
        ``quantity``, ``returned_quantity``, ``gross_revenue`` (quantity × unit price),
        ``discount``, ``refunds``, ``net_revenue`` (gross − discount − refunds),
        ``cogs_kept`` ((quantity − returned quantity) × unit cost), ``fulfilment_cost``
        (the order's shipping + payment + handling, allocated by gross − discount),
        ``return_handling`` and ``gp2``. Money is NULL where the order has no rate.
        Lines whose order is not in ``orders`` are left out.
    """
    kept = _orders_as_of(orders, as_of)
    rates = order_rates(kept, fx_rates, reporting_currency=reporting_currency)
    lines = _allocate_fulfilment(_local_lines(order_lines, returns, as_of), order_costs)
    joined = lines.join(rates, "order_id")
    rate = joined.rate_to_reporting
    money = {name: joined[name] * rate for name in MONEY_COLUMNS if name != "gp2"}
    return joined.select(
        joined.order_id,
        joined.line_no,
        joined.sku,
        joined.quantity,
        joined.returned_quantity,
        **money,
        gp2=gp2(money["net_revenue"], money["cogs_kept"], money["fulfilment_cost"], money["return_handling"]),
    )


def _order_totals(lines: ir.Table) -> ir.Table:
    """Line values summed per order."""
    sums = {name: lines[name].sum() for name in MONEY_COLUMNS}
    return lines.group_by("order_id").aggregate(items=lines.quantity.sum(), **sums)


def order_values(
    orders: ir.Table,
    order_lines: ir.Table,
    returns: ir.Table,
    order_costs: ir.Table,
    fx_rates: ir.Table,
    *,
    as_of: TimeLike | None = None,
    reporting_currency: str | None = None,
) -> ir.Table:
    """Revenue, costs and GP2 of every order, in the reporting currency: its lines summed.

    Parameters
    ----------
    orders, order_lines, returns, order_costs, fx_rates
        The contract tables of those names.
    as_of
        When given, only orders placed and returns received strictly before it count.
    reporting_currency
        Orders in this currency convert at 1 when ``fx_rates`` has no rate for it.

    Returns
    -------
    ir.Table
        One row per order: the order's descriptive columns (``order_id``, ``source``,
        ``customer_id``, ``email``, ``loyalty_id``, ``ordered_at``, ``channel``,
        ``country``, ``currency``, ``store_id``), ``items`` (units sold), the sums of
        :func:`line_values`' money columns, and ``revenue`` (= ``net_revenue``, the
        value of revenue-based CLV). An order without lines keeps its fulfilment
        cost: zero revenue and a negative ``gp2``.
    """
    kept = _orders_as_of(orders, as_of)
    totals = _order_totals(
        line_values(orders, order_lines, returns, order_costs, fx_rates, as_of=as_of,
                    reporting_currency=reporting_currency)
    )
    rates = order_rates(kept, fx_rates, reporting_currency=reporting_currency)
    costs = _order_fulfilment(order_costs)
    joined = (
        kept.left_join(totals, "order_id")
        .drop("order_id_right")
        .left_join(rates, "order_id")
        .drop("order_id_right")
        .left_join(costs, "order_id")
        .drop("order_id_right")
    )
    has_lines = joined["items"].notnull()
    rate = joined.rate_to_reporting
    zero = (rate * 0).cast("float64")  # 0 in the reporting currency, NULL without a rate
    money = {name: ibis.ifelse(has_lines, joined[name], zero) for name in MONEY_COLUMNS}
    money["fulfilment_cost"] = ibis.ifelse(
        has_lines, joined.fulfilment_cost, joined.fulfilment_total.fill_null(0) * rate
    )
    money["gp2"] = ibis.ifelse(
        has_lines, joined.gp2, gp2(zero, zero, money["fulfilment_cost"], zero)
    )
    return joined.select(
        "order_id", "source", "customer_id", "email", "loyalty_id", "ordered_at", "channel",
        "country", "currency", "store_id",
        items=joined["items"].fill_null(0).cast("int64"),
        **money,
        revenue=money["net_revenue"],
    )
