"""Order lines, returns and fulfilment costs.

How an order's Gamma-Gamma value becomes lines: the order's gross value
``z`` (EUR at list prices) is split over 1-4 lines (``lines_probs``, at most
one per 35 EUR) with Dirichlet(2) weights. Each line draws a category from the person's tastes
and a material from their tastes weighted by how well the line's target fits
the material's price band (a 40 EUR line is not gold), and takes, within
that category and material, the product whose EUR list price is closest (in
logs) to the line's share of ``z``, with
quantity ``round(share / price)`` clipped to 1-3. The realised gross value
at EUR list prices thus tracks ``z`` up to the price steps of the catalogue
(median realised/target about 1.03; below the cheapest product an order
still costs that product). Lines
are then priced from the market's local price list (``unit_price``).

Discounts: an order is discounted with probability ``discount_rate_prone``
for discount-prone persons and ``discount_rate_other`` for others, times
``black_friday_discount_factor`` from Black Friday to Cyber Monday (local
dates); a discounted order takes 10-30 % off every line. ``unit_cost`` is the
cost of goods (a material-dependent share of the EUR list price) converted at
the day's exchange rate. Returns: each line is returned with its category's
rate (``return_rates``), all units or some of them, refunded pro rata net of
discount, 3-40 days later; returns after the observation end are not yet
known and are left out. Order costs: online orders pay shipping (by market),
a card fee of 1.4 % + 0.25 EUR and pick-and-pack handling; store orders a
0.9 % card fee and a small handling cost. All money is in the order currency.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from patron.contract import CATEGORIES, MATERIALS
from patron.simulate.calendar import COUNTRIES, EPOCH, black_friday
from patron.simulate.catalog import COST_RATIO, PRICE_BANDS, Catalog, day_index, round_money
from patron.simulate.population import Persons, pick
from patron.simulate.purchases import Orders
from patron.simulate.settings import RetailerSettings

SHIPPING_EUR = {"GB": 7.0, "US": 9.0, "AU": 11.0, "JP": 11.0}
DEFAULT_SHIPPING_EUR = 5.5
MIN_LINE_EUR = 35.0  # an order has at most one line per this much of its value


def _line_counts(rng: np.random.Generator, n: int, probs: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(probs) / sum(probs)
    return rng.choice(np.arange(1, p.size + 1), size=n, p=p)


def choose_products(catalog: Catalog, cell: np.ndarray, target_eur: np.ndarray) -> np.ndarray:
    """Index of the product in ``cell`` whose list price is closest in logs to ``target_eur``."""
    key = cell * 100.0 + np.log(target_eur)
    catalog_key = (catalog.category * len(MATERIALS) + catalog.material) * 100.0 + np.log(catalog.price_eur)
    hi = np.searchsorted(catalog_key, key)
    lo_bound, hi_bound = catalog.cell_start[cell], catalog.cell_start[cell + 1] - 1
    right = np.clip(hi, lo_bound, hi_bound)
    left = np.clip(hi - 1, lo_bound, hi_bound)
    closer_left = np.abs(catalog_key[left] - key) <= np.abs(catalog_key[right] - key)
    return np.where(closer_left, left, right)


def _materials(rng: np.random.Generator, persons: Persons, person: np.ndarray, cat: np.ndarray,
               target: np.ndarray) -> np.ndarray:
    """Material per line: the person's taste times how well the target fits each material's price band."""
    taste = np.diff(persons.material_cdf[person], axis=1, prepend=0.0)
    lo = np.log(np.array([[band[0] for band in PRICE_BANDS[c]] for c in CATEGORIES]))[cat]
    hi = np.log(3.0 * np.array([[band[1] for band in PRICE_BANDS[c]] for c in CATEGORIES]))[cat]
    log_t = np.log(target)[:, None]
    outside = np.maximum(np.maximum(lo - log_t, log_t - hi), 0.0)
    weight = taste * np.exp(-((outside / 0.25) ** 2)) + 1e-12
    cdf = np.cumsum(weight, axis=1)
    u = rng.random(person.size) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), len(MATERIALS) - 1)


def _black_friday_days(years: range) -> np.ndarray:
    """Local days (since 1970) from Black Friday to Cyber Monday of ``years``."""
    bf = [(np.datetime64(black_friday(y), "D") - EPOCH).astype(int) for y in years]
    return np.concatenate([np.arange(d, d + 4) for d in bf])


def build_lines(rng: np.random.Generator, orders: Orders, order_ids: pa.Array, currency: np.ndarray,
                persons: Persons, catalog: Catalog, rates: np.ndarray, first_day: int,
                s: RetailerSettings) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The order_lines table and per-line arrays (order index, category, net value) for returns."""
    n_orders = orders.person.size
    count = np.minimum(_line_counts(rng, n_orders, s.lines_probs),
                       np.maximum(orders.spend_eur // MIN_LINE_EUR, 1).astype(np.int64))
    owner = np.repeat(np.arange(n_orders), count)
    line_no = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count) + 1
    weight = rng.gamma(2.0, 1.0, owner.size)
    share = weight / np.bincount(owner, weights=weight, minlength=n_orders)[owner]
    target = orders.spend_eur[owner] * share
    person = orders.person[owner]
    cat = pick(persons.category_cdf, person, rng.random(owner.size))
    mat = _materials(rng, persons, person, cat, target)
    product = choose_products(catalog, cat * len(MATERIALS) + mat, target)
    quantity = np.clip(np.round(target / catalog.price_eur[product]), 1, 3).astype(np.int64)
    cur = currency[owner]
    unit_price = catalog.local_price[product, cur]
    years = range(int(str(np.datetime64(int(orders.local_day.min()), "D"))[:4]) - 1,
                  int(str(np.datetime64(int(orders.local_day.max()), "D"))[:4]) + 1)
    in_bf = np.isin(np.floor(orders.local_day).astype(np.int64), _black_friday_days(years))
    base = np.where(persons.discount_prone[orders.person], s.discount_rate_prone, s.discount_rate_other)
    chance = np.minimum(base * np.where(in_bf, s.black_friday_discount_factor, 1.0), 1.0)
    discounted = rng.random(n_orders) < chance
    rate = np.where(discounted, rng.choice([0.10, 0.15, 0.20, 0.25, 0.30], n_orders), 0.0)
    discount = round_money(unit_price * quantity * rate[owner], cur)
    fx = rates[cur, day_index(orders.utc_us[owner], first_day, rates.shape[1])]
    cost_eur = catalog.price_eur[product] * COST_RATIO[catalog.material[product]]
    unit_cost = round_money(cost_eur / fx, cur)
    table = pa.table({
        "order_id": order_ids.take(pa.array(owner)),
        "line_no": pa.array(line_no.astype(np.int64)),
        "sku": catalog.table.column("sku").combine_chunks().take(pa.array(product)),
        "quantity": pa.array(quantity),
        "unit_price": pa.array(unit_price, pa.float64()),
        "discount": pa.array(discount, pa.float64()),
        "unit_cost": pa.array(unit_cost, pa.float64()),
    })
    facts = {"owner": owner, "line_no": line_no, "category": catalog.category[product],
             "quantity": quantity, "net": unit_price * quantity - discount, "currency": cur}
    return table, facts


def build_returns(rng: np.random.Generator, facts: dict[str, np.ndarray], orders: Orders, online: np.ndarray,
                  order_ids: pa.Array, rates: np.ndarray, first_day: int, end_us: int,
                  s: RetailerSettings) -> tuple[pa.Table, np.ndarray]:
    """The returns table and, per line, whether it was returned (before the observation end or not)."""
    owner = facts["owner"]
    rate_of = np.array([s.return_rates[c] for c in CATEGORIES])
    returned = rng.random(owner.size) < rate_of[facts["category"]]
    qty = facts["quantity"]
    part = np.where(qty > 1, rng.binomial(np.maximum(qty - 1, 0), 0.5) + 1, 1)
    delay_days = np.where(online[owner], 3.0 + rng.gamma(2.0, 5.0, owner.size),
                          1.0 + rng.gamma(1.5, 4.0, owner.size))
    at = orders.utc_us[owner] + np.floor(np.minimum(delay_days, 40.0) * 86_400).astype(np.int64) * 1_000_000
    keep = np.flatnonzero(returned & (at < end_us))
    cur = facts["currency"][keep]
    fx = rates[cur, day_index(at[keep], first_day, rates.shape[1])]
    handling_eur = np.where(online[owner[keep]], 6.0, 2.0)
    table = pa.table({
        "order_id": order_ids.take(pa.array(owner[keep])),
        "line_no": pa.array(facts["line_no"][keep].astype(np.int64)),
        "returned_at": pa.array(at[keep], pa.timestamp("us", tz="UTC")),
        "quantity": pa.array(part[keep].astype(np.int64)),
        "refund_amount": pa.array(round_money(facts["net"][keep] * part[keep] / qty[keep], cur)),
        "handling_cost": pa.array(round_money(handling_eur / fx, cur), pa.float64()),
    })
    return table, returned


def build_costs(facts: dict[str, np.ndarray], orders: Orders, online: np.ndarray, country: np.ndarray,
                currency: np.ndarray, order_ids: pa.Array, rates: np.ndarray, first_day: int) -> pa.Table:
    """The order_costs table: shipping, payment fee and handling per order, in the order currency."""
    n = orders.person.size
    lines = np.bincount(facts["owner"], minlength=n)
    net = np.bincount(facts["owner"], weights=facts["net"], minlength=n)
    fx = rates[currency, day_index(orders.utc_us, first_day, rates.shape[1])]
    ship_eur = np.array([SHIPPING_EUR.get(c, DEFAULT_SHIPPING_EUR) for c in COUNTRIES])[country]
    shipping = np.where(online, ship_eur * (1.0 + 0.15 * (lines - 1)) / fx, 0.0)
    fee = np.where(online, 0.014 * net + 0.25 / fx, 0.009 * net)
    handling = np.where(online, (2.0 + 0.5 * lines) / fx, 0.8 / fx)
    return pa.table({
        "order_id": order_ids,
        "shipping_cost": pa.array(round_money(shipping, currency), pa.float64()),
        "payment_fee": pa.array(round_money(fee, currency), pa.float64()),
        "handling_cost": pa.array(round_money(handling, currency), pa.float64()),
    })
