"""Benchmark: fit the value models and score N customers on profit CLV in a DuckDB warehouse.

Run ``python -m benchmarks.bench_scoring --customers 1000000``. It simulates an ``rfm``
table (BG/NBD purchases over five years of daily data, Gamma-Gamma revenue, noisy kept
margins), writes it to a DuckDB warehouse file, then times

(a) ``fit_value_models`` (the purchase model on the histogram, the spend model on the
    repeat buyers' distinct pairs, the margin model on engine sums);
(b) ``score_customers``: the purchase model on the distinct (frequency, recency, T) rows
    in Python (three horizons, 36 monthly flows, the interval's gradients), the engine
    join back to every customer and the write of ``scores``;

and prints the distinct rows, the seconds and the customers scored per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from patron.config import Settings
from patron.engine import connect
from patron.scoring import fit_value_models, score_customers

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchase-model", default="BetaGeo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(project_dir=Path(folder), engine="duckdb")
        rfm = simulate_rfm(args.customers)
        with connect(settings) as warehouse:
            warehouse.write("rfm", rfm)
            start = time.perf_counter()
            models = fit_value_models(warehouse, settings=settings, purchase_model=args.purchase_model)
            fitted = time.perf_counter()
            result = score_customers(warehouse, models, settings=settings, observation_end=END.date())
            scored = time.perf_counter()
            rows, distinct = result.customers, result.distinct_rows
        print(f"customers          {args.customers:,} ({rows:,} scored)")
        print(f"distinct rows      {distinct:,}")
        print(f"purchase model     {models.purchase!r}")
        print(f"spend model        {models.spend!r}")
        print(f"margin model       {models.margin!r}")
        print(f"fit                {fitted - start:.1f} s")
        print(f"score              {scored - fitted:.1f} s  ({rows / (scored - fitted):,.0f} customers/s)")


if __name__ == "__main__":
    main()
