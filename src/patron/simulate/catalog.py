"""Products, local price lists and daily exchange rates.

The catalogue holds 200 SKUs over five categories and three materials in six
collections; list prices are in EUR (the reporting currency), log-spaced
within a price band per category and material, with charm pricing (…9).
Each market sells at a fixed local price list: the EUR list price divided by
the currency's reference rate, rounded like a price (EUR, GBP, USD, AUD, PLN
to …9, DKK and SEK to …49/…99, JPY to whole hundreds). Exchange rates
(``rate_to_reporting``: EUR per unit) follow a mean-reverting random walk in
logs around the reference level, one rate per currency per day; EUR is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from patron.contract import CATEGORIES, MATERIALS
from patron.simulate.calendar import CURRENCIES, DAY_US

#: EUR per unit of each currency (the level the daily rates wander around)
REFERENCE_RATE = {"EUR": 1.0, "DKK": 0.134, "GBP": 1.16, "USD": 0.92, "AUD": 0.61, "SEK": 0.088,
                  "PLN": 0.23, "JPY": 0.0063}
DAILY_VOLATILITY = {"EUR": 0.0, "DKK": 0.0002, "GBP": 0.003, "USD": 0.004, "AUD": 0.005, "SEK": 0.004,
                    "PLN": 0.004, "JPY": 0.005}
DECIMALS = np.array([0 if c == "JPY" else 2 for c in CURRENCIES])
#: price band (EUR) per category and material (silver, gold, rose gold) and SKUs per category
PRICE_BANDS = {
    "charms": ((19, 89), (150, 450), (45, 109)),
    "bracelets": ((49, 229), (400, 1600), (69, 279)),
    "necklaces": ((49, 249), (300, 1500), (69, 299)),
    "rings": ((39, 159), (250, 1200), (49, 189)),
    "earrings": ((19, 139), (150, 800), (45, 159)),
}
SKUS_PER_CATEGORY = {"charms": 60, "bracelets": 35, "necklaces": 35, "rings": 40, "earrings": 30}
MATERIAL_SHARE = (0.5, 0.2, 0.3)
COST_RATIO = np.array([0.22, 0.45, 0.32])  # cost of goods / list price, by material
COLLECTIONS = ("Moments", "Timeless", "Signature", "Essence", "Celestial", "Garden")


@dataclass
class Catalog:
    """Products sorted by (category, material, price); ``cell`` = category * 3 + material."""

    table: pa.Table
    category: np.ndarray
    material: np.ndarray
    price_eur: np.ndarray
    cell_start: np.ndarray  # first product of each cell, with a final sentinel
    local_price: np.ndarray  # (products, currencies)


def charm_price(x: np.ndarray) -> np.ndarray:
    """EUR-like price ending in 9: 83.4 -> 79, 146 -> 149."""
    return np.maximum(np.round(x / 10.0) * 10.0 - 1.0, 9.0)


def local_price(eur: np.ndarray, currency: str) -> np.ndarray:
    """A market's list price of EUR prices ``eur``, rounded like a price in ``currency``."""
    x = eur / REFERENCE_RATE[currency]
    if currency == "JPY":
        return np.round(x / 100.0) * 100.0
    if currency in ("DKK", "SEK"):
        return np.maximum(np.round(x / 50.0) * 50.0 - 1.0, 49.0)
    return charm_price(x)


def build_catalog(rng: np.random.Generator) -> Catalog:
    """The product master: SKU, name, category, material, collection and EUR list price."""
    cats, mats, prices = [], [], []
    for ci, cat in enumerate(CATEGORIES):
        total = SKUS_PER_CATEGORY[cat]
        counts = np.round(np.array(MATERIAL_SHARE) * total).astype(int)
        counts[0] += total - counts.sum()
        for mi, (lo, hi) in enumerate(PRICE_BANDS[cat]):
            grid = np.exp(np.linspace(np.log(lo), np.log(hi), counts[mi]))
            grid *= np.exp(rng.normal(0.0, 0.04, counts[mi]))
            cats.append(np.full(counts[mi], ci))
            mats.append(np.full(counts[mi], mi))
            prices.append(np.sort(charm_price(grid)))
    category, material, price = np.concatenate(cats), np.concatenate(mats), np.concatenate(prices)
    collection = rng.integers(0, len(COLLECTIONS), category.size)
    cell = category * len(MATERIALS) + material
    cell_start = np.searchsorted(cell, np.arange(len(CATEGORIES) * len(MATERIALS) + 1))
    skus = [f"{CATEGORIES[c][:2].upper()}{i + 1:04d}" for i, c in enumerate(category)]
    names = [f"{COLLECTIONS[k]} {MATERIALS[m]} {CATEGORIES[c].rstrip('s')} {i % 97 + 1}"
             for i, (k, m, c) in enumerate(zip(collection, material, category, strict=True))]
    table = pa.table({
        "sku": pa.array(skus, pa.string()),
        "name": pa.array(names, pa.string()),
        "category": pa.array(np.array(CATEGORIES)[category]),
        "material": pa.array(np.array(MATERIALS)[material]),
        "collection": pa.array(np.array(COLLECTIONS)[collection]),
        "list_price": pa.array(price, pa.float64()),
    })
    prices_local = np.stack([local_price(price, cur) for cur in CURRENCIES], axis=1)
    return Catalog(table, category, material, price, cell_start, prices_local)


def daily_rates(rng: np.random.Generator, first_day: int, n_days: int) -> np.ndarray:
    """EUR per unit, shape (currencies, days): AR(1) in logs (phi 0.998) around the reference rate."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs a second at CLI start-up

    out = np.empty((len(CURRENCIES), n_days))
    for k, cur in enumerate(CURRENCIES):
        shocks = rng.normal(0.0, DAILY_VOLATILITY[cur], n_days)
        out[k] = REFERENCE_RATE[cur] * np.exp(lfilter([1.0], [1.0, -0.998], shocks))
    return np.round(out, 6)


def fx_table(rates: np.ndarray, first_day: int) -> pa.Table:
    """The fx_rates table: one row per currency and day."""
    n_days = rates.shape[1]
    days = np.tile(np.arange(first_day, first_day + n_days, dtype=np.int32), len(CURRENCIES))
    return pa.table({
        "currency": pa.array(np.repeat(np.array(CURRENCIES), n_days)),
        "date": pa.array(days, pa.date32()),
        "rate_to_reporting": pa.array(rates.ravel(), pa.float64()),
    })


def day_index(utc_us: np.ndarray, first_day: int, n_days: int) -> np.ndarray:
    """Index into the daily rate grid of UTC microsecond times (clipped to the grid)."""
    return np.clip(utc_us // DAY_US - first_day, 0, n_days - 1)


def round_money(values: np.ndarray, currency: np.ndarray) -> np.ndarray:
    """Round amounts to the minor unit of each row's currency (JPY has none)."""
    scale = 10.0 ** DECIMALS[currency]
    return np.round(values * scale) / scale
