"""Benchmark: fit the value models and score N customers on profit CLV in a DuckDB warehouse, against lifetimes.

Run ``python -m benchmarks.bench_scoring --customers 1000000 [10000000]``. For each size it
simulates an ``rfm`` table (BG/NBD purchases over five years of daily data, Gamma-Gamma
revenue, noisy kept margins), writes it to a DuckDB warehouse file, then times

(a) ``fit_value_models`` (the purchase model on the histogram, the spend model on the
    repeat buyers' distinct pairs, the margin model on engine sums);
(b) the model side of scoring (``score_inputs``): the purchase model on the distinct
    (frequency, recency, T) rows and (frequency, T) pairs (p_alive, churn risk, next-order
    date, three horizons of 36 monthly flows and the interval's gradients) and the spend
    coefficients per frequency;
(c) ``score_customers`` end to end: (b), the engine join back to every customer, the
    per-customer arithmetic (value per order, margin, CLV and its interval per horizon)
    and the write of the 27-column ``scores`` table;
(d) lifetimes on the same customers with the same parameters, in memory and without
    intervals or margins (so it does less): P(alive), expected purchases and CLV at 3,
    12 and 36 months (``GammaGammaFitter.customer_lifetime_value``, monthly discounting),
    on ``--lifetimes-customers`` of them, scaled linearly;

and prints customers per second and the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patron.config import Settings
from patron.engine import connect
from patron.scoring.batch import score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.predictions import score_inputs

END = pd.Timestamp("2025-06-30", tz="UTC")


def simulate_rfm(n: int, seed: int = 0) -> pd.DataFrame:
    """An ``rfm`` table of ``n`` BG/NBD customers acquired over five years (weeks, day resolution)."""
    rng = np.random.default_rng(seed)
    age_days = rng.integers(1, 5 * 365 + 1, n)
    big_t = age_days / 7.0
    lam = rng.gamma(0.3, 1.0 / 8.0, n)  # r = 0.3, alpha = 8 (weeks)
    p = rng.beta(0.7, 3.0, n)
    n_purchases = rng.poisson(lam * big_t)
    x = np.minimum(n_purchases, rng.geometric(p)).astype("int64")  # drop-out after the k-th repeat
    frac = np.where(x > 0, rng.beta(np.maximum(x, 1), np.maximum(n_purchases - x, 0) + 1.0), 0.0)
    recency_days = np.floor(frac * age_days)
    nu = rng.gamma(4.0, 1.0 / 150.0, n)  # p = 6, q = 4, gamma = 150: mean revenue 300 per order
    first_revenue = rng.gamma(6.0, 1.0 / nu)
    repeat_mean = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1), 1.0 / (np.maximum(x, 1) * nu)), 0.0)
    theta = rng.normal(0.35, 0.12, n)
    first_gp2 = theta * first_revenue + rng.normal(0, 1, n) * np.sqrt(2.0 * first_revenue)
    repeat_gp2 = theta * repeat_mean * x + rng.normal(0, 1, n) * np.sqrt(2.0 * repeat_mean * x)
    first_at = END - pd.to_timedelta(age_days, unit="D")
    monetary_gp2 = np.where(x > 0, repeat_gp2 / np.maximum(x, 1), 0.0)
    return pd.DataFrame({
        "customer_key": pd.Series(np.arange(n)).map("c{:08d}".format),
        "frequency": x,
        "recency": recency_days / 7.0,
        "T": big_t,
        "monetary_value": monetary_gp2,
        "monetary_gp2": monetary_gp2,
        "monetary_revenue": repeat_mean,
        "n_orders": x + 1,
        "total_gp2": first_gp2 + x * monetary_gp2,
        "total_revenue": first_revenue + x * repeat_mean,
        "first_purchase_at": first_at,
        "last_purchase_at": first_at + pd.to_timedelta(recency_days, unit="D"),
    })


def lifetimes_seconds(models: Any, rfm: pd.DataFrame, horizons: tuple[int, ...], rate: float) -> float:
    """Seconds for lifetimes to give P(alive), expected purchases and CLV per horizon to ``rfm``'s customers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    purchase = BetaGeoFitter()
    purchase.params_ = pd.Series(models.purchase.params_)
    purchase.predict = purchase.conditional_expected_number_of_purchases_up_to_time  # what lifetimes' fit attaches
    spend = GammaGammaFitter()
    gg = models.spend.params_
    spend.params_ = pd.Series({"p": gg["p"], "q": gg["q"], "v": gg["gamma"]})
    f, r, t = rfm["frequency"], rfm["recency"], rfm["T"]
    m = rfm["monetary_revenue"].clip(lower=1e-9)
    monthly = (1.0 + rate) ** (1.0 / 12.0) - 1.0
    start = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        purchase.conditional_probability_alive(f, r, t)
        for h in horizons:
            purchase.conditional_expected_number_of_purchases_up_to_time(h * 4.345, f, r, t)
            spend.customer_lifetime_value(purchase, f, r, t, m, time=h, freq="W", discount_rate=monthly)
    return time.perf_counter() - start


def run(n: int, args: argparse.Namespace) -> dict[str, float]:
    """Every measurement for one number of customers."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(project_dir=Path(folder), engine="duckdb")
        rfm = simulate_rfm(n)
        with connect(settings) as warehouse:
            warehouse.write("rfm", rfm)
            start = time.perf_counter()
            models = fit_value_models(warehouse, settings=settings, purchase_model=args.purchase_model)
            fitted = time.perf_counter()
            table = warehouse.table("rfm")
            rows, _ = score_inputs(warehouse, models, settings, table, END.date())
            model_side = time.perf_counter()
            result = score_customers(warehouse, models, settings=settings, observation_end=END.date())
            scored = time.perf_counter()
        horizons = tuple(settings.model.horizons_months)
        sample = rfm.iloc[: min(n, args.lifetimes_customers)]
        lifetimes_s = lifetimes_seconds(models, sample, horizons, settings.model.annual_discount_rate)
    print(f"customers          {n:,} ({result.customers:,} scored); distinct rows {len(rows):,}")
    print(f"models             {models.purchase!r}; {models.spend!r}; {models.margin!r}")
    print(f"fit                {fitted - start:.2f} s")
    return {
        "customers": n, "distinct_rows": len(rows), "fit_s": fitted - start,
        "model_side_s": model_side - fitted, "score_s": scored - model_side,
        "lifetimes_per_s": len(sample) / lifetimes_s, "lifetimes_used": len(sample),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--purchase-model", default="BetaGeo")
    parser.add_argument("--lifetimes-customers", type=int, default=100_000,
                        help="lifetimes scores at most this many customers; its rate is scaled to all")
    args = parser.parse_args()
    results = [run(n, args) for n in args.customers]
    print("\n| customers | distinct rows | fit s | model side s (customers/s) | end to end s (customers/s) "
          "| lifetimes customers/s (in memory) | end to end / lifetimes |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        n = r["customers"]
        print(f"| {n:,} | {r['distinct_rows']:,} | {r['fit_s']:.2f} | {r['model_side_s']:.2f} "
              f"({n / r['model_side_s']:,.0f}) | {r['score_s']:.2f} ({n / r['score_s']:,.0f}) "
              f"| {r['lifetimes_per_s']:,.0f} | {n / r['score_s'] / r['lifetimes_per_s']:.1f}x |")


if __name__ == "__main__":
    main()
