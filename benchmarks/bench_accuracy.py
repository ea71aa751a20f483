"""Benchmark: holdout accuracy of the purchase models on the synthetic retailer, calendar vs seasonal clock.

Run ``python -m benchmarks.bench_accuracy --customers 200000 --seeds 1 2``. For each seed
it generates the retailer with its default seasons and without (``SeasonShape(0, 0, 0, 0,
0)``), keys the orders by the true person (identity solved: this measures the clock, not
the identity resolution) and runs :func:`patron.evaluation.backtest` with BG/NBD,
Pareto/NBD and MBG/NBD, and BG/NBD at the true parameters (``fit=False``), on two splits:

- annual: calibration to 2024-12-30, holdout to 2025-12-30;
- November quarter: calibration to 2024-10-31, holdout to 2025-01-31;

each with ``clock=None`` (the calendar, patron before issue 11) and ``clock="auto"`` (a
month-of-year intensity per market estimated from the calibration orders). It prints one
line per run: relative error of the predicted holdout total per model, and seconds.
"""

from __future__ import annotations

import argparse
import time

import ibis
import pandas as pd

from patron.evaluation import backtest
from patron.models import BetaGeo, ModifiedBetaGeo, ParetoNBD
from patron.simulate import generate_retailer
from patron.simulate.calendar import SeasonShape

TRUTH = {"r": 0.2, "alpha": 10.0, "a": 0.7, "b": 2.5}
SPLITS = {"annual": ("2024-12-30", "2025-12-30"), "nov-quarter": ("2024-10-31", "2025-01-31")}


def orders(customers: int, seed: int, flat: bool) -> pd.DataFrame:
    extra = {"season": SeasonShape(0, 0, 0, 0, 0)} if flat else {}
    retailer = generate_retailer(customers=customers, seed=seed, **extra)
    frame = retailer.tables["orders"].select(["order_id", "ordered_at", "country"]).to_pandas()
    truth = retailer.truth["truth_orders"].select(["order_id", "person_id", "spend_eur"]).to_pandas()
    return frame.merge(truth, on="order_id").rename(columns={"person_id": "customer_key", "spend_eur": "gp2"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--no-pareto", action="store_true", help="leave Pareto/NBD out (its fit is the slowest)")
    args = parser.parse_args()
    con = ibis.duckdb.connect()
    print("seed | seasons | split | clock | actual | BG/NBD | Pareto/NBD | MBG/NBD | BG/NBD true | s")
    for seed in args.seeds:
        for flat in (False, True):
            table = ibis.memtable(orders(args.customers, seed, flat))
            for split, (start, end) in SPLITS.items():
                for clock in (None, "auto"):
                    models = {"bg_nbd": BetaGeo(), "pareto_nbd": ParetoNBD(), "mbg_nbd": ModifiedBetaGeo()}
                    if args.no_pareto:
                        models.pop("pareto_nbd")
                    began = time.perf_counter()
                    fitted = backtest(table, calibration_end=start, holdout_end=end, run=con, clock=clock,
                                      models=models)
                    truth = backtest(table, calibration_end=start, holdout_end=end, run=con, clock=clock,
                                     models={"truth": BetaGeo().with_params(TRUTH)}, fit=False)
                    seconds = time.perf_counter() - began
                    error = {n: m.metrics["total_error_relative"] for n, m in {**fitted.models,
                                                                                 **truth.models}.items()}
                    cells = [f"{error[n] * 100:+.2f} %" if n in error else "-"
                             for n in ("bg_nbd", "pareto_nbd", "mbg_nbd", "truth")]
                    print(f"{seed} | {'off' if flat else 'on'} | {split} | {clock or 'calendar'} | "
                          f"{fitted.actual_total:,} | {' | '.join(cells)} | {seconds:.0f}", flush=True)


if __name__ == "__main__":
    main()
