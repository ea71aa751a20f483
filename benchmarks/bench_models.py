"""Benchmark: BG/NBD, MBG/NBD and Pareto/NBD fit and scoring at scale, patron against lifetimes (and PyMC-Marketing).

Run ``python -m benchmarks.bench_models --customers 1000000 10000000``. For each size it

1. simulates the sufficient statistics of a 5-year cohort with daily first purchases (ages
   0-1825 days, in weeks at day resolution) straight from the models with known
   parameters (numpy, no transaction log);
2. builds the histogram with :func:`patron.transforms.rfm.rfm_histogram` on DuckDB, exact
   and on a weekly grid (``resolution=1``);
3. times patron's fit on (a) the exact distinct rows and (b) the weekly histogram, and
   lifetimes' ``BetaGeoFitter`` / ``ModifiedBetaGeoFitter`` / ``ParetoNBDFitter`` on the per-customer rows (on a
   subsample, extrapolated linearly, above ``--lifetimes-customers`` /
   ``--lifetimes-pnbd-customers``: lifetimes' Pareto/NBD uses Nelder-Mead on every
   customer and takes minutes);
4. evaluates every fitted parameter set on the same exact per-customer data (patron's
   likelihood, checked against lifetimes' in the tests), so "equal or better" is honest;
5. times scoring: patron's ``p_alive`` and ``expected_purchases`` on the exact distinct
   rows (rows/s, and customers/s counting the customers each row stands for; the join
   back to customers is measured in the scoring benchmark) and 12-month CLV on
   per-customer rows, against lifetimes' per-customer functions;
6. with ``--pymc-python`` pointing at a separate virtualenv holding pymc-marketing (never
   the project's), times its BG/NBD MAP fit on the same data in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from patron.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from patron.models.clv import customer_lifetime_value
from patron.transforms.rfm import rfm_histogram

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

R = TypeVar("R")
DAYS = 5 * 365
BG_TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL (2005) CDNOW estimates
PNBD_TRUTH = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GG_TRUTH = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # Fader, Hardie & Lee, "RFM and CLV", CDNOW
CHUNK = 1_000_000  # per-customer scoring works in chunks so 10M customers stay within memory
PYMC_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from pymc_marketing.clv import BetaGeoModel
d = np.load(sys.argv[1])
frame = pd.DataFrame({"customer_id": np.arange(len(d["x"])), "frequency": d["x"], "recency": d["r"], "T": d["T"]})
start = time.perf_counter()
model = BetaGeoModel(data=frame)
model.fit(method="map")
seconds = time.perf_counter() - start
post = model.fit_result
post = getattr(post, "posterior", post)
params = {k: float(post[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b")}
print(json.dumps({"seconds": seconds, "params": params}))
"""


def timed(func: Callable[[], R], repeats: int = 1) -> tuple[float, R]:
    """Best wall-clock seconds of ``repeats`` calls, and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


# ---- simulation -------------------------------------------------------------------------
def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days since the first purchase: daily first purchases over 5 years."""
    return rng.integers(0, DAYS + 1, n).astype(float)


def _to_weeks(recency: np.ndarray, t_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recency (continuous, weeks) to whole days (never past T), both back in weeks."""
    return np.minimum(np.round(recency * 7.0), t_days) / 7.0, t_days / 7.0


def simulate_bg_nbd(n: int, seed: int = 1) -> pd.DataFrame:
    """BG/NBD customers: Poisson purchases at Gamma(r, alpha) rates, drop-out Beta(a, b) after each."""
    rng = np.random.default_rng(seed)
    t_days = _ages(rng, n)
    lam = rng.gamma(BG_TRUTH["r"], 1.0 / BG_TRUTH["alpha"], n)
    p = rng.beta(BG_TRUTH["a"], BG_TRUTH["b"], n)
    count = rng.poisson(lam * t_days / 7.0)
    x = np.minimum(count, rng.geometric(p))
    recency = np.zeros(n)
    buyers = x > 0
    # the x-th of `count` uniform purchase times in (0, T]
    recency[buyers] = t_days[buyers] / 7.0 * rng.beta(x[buyers], count[buyers] - x[buyers] + 1.0)
    return _frame(rng, x, *_to_weeks(recency, t_days))


def simulate_pareto_nbd(n: int, seed: int = 2) -> pd.DataFrame:
    """Pareto/NBD customers: Poisson purchases at Gamma(r, alpha) rates until an Exp(Gamma(s, beta)) death."""
    rng = np.random.default_rng(seed)
    t_days = _ages(rng, n)
    lam = rng.gamma(PNBD_TRUTH["r"], 1.0 / PNBD_TRUTH["alpha"], n)
    mu = rng.gamma(PNBD_TRUTH["s"], 1.0 / PNBD_TRUTH["beta"], n)
    alive = np.minimum(rng.exponential(1.0 / mu), t_days / 7.0)
    x = rng.poisson(lam * alive)
    recency = np.zeros(n)
    buyers = x > 0
    recency[buyers] = alive[buyers] * rng.beta(x[buyers], 1.0)  # the last of x uniform times
    return _frame(rng, x, *_to_weeks(recency, t_days))


def _frame(rng: np.random.Generator, x: np.ndarray, recency: np.ndarray, big_t: np.ndarray) -> pd.DataFrame:
    """The statistics plus a Gamma-Gamma mean spend of the repeat purchases (0 without repeats)."""
    nu = rng.gamma(GG_TRUTH["q"], 1.0 / GG_TRUTH["gamma"], len(x))
    shape = GG_TRUTH["p"] * np.maximum(x, 1)
    spend = rng.gamma(shape, 1.0 / (nu * np.maximum(x, 1)))
    return pd.DataFrame({"frequency": x.astype(float), "recency": recency, "T": big_t,
                         "monetary_value": np.where(x > 0, spend, 0.0)})


# ---- histograms --------------------------------------------------------------------------
def histograms(customers: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], float]:
    """Exact and weekly histograms built by ``rfm_histogram`` on DuckDB, and the seconds both took."""
    con = ibis.duckdb.connect()
    table = con.create_table("summary", pa.table({c: customers[c].to_numpy() for c in ("frequency", "recency", "T")}))
    start = time.perf_counter()
    out = {
        "exact": con.to_pandas(rfm_histogram(table)),
        "weekly": con.to_pandas(rfm_histogram(table, resolution=1.0)),
    }
    seconds = time.perf_counter() - start
    con.disconnect()
    return out, seconds


def exact_log_likelihood(model_cls: type, params: dict[str, float], exact: pd.DataFrame) -> float:
    """Log-likelihood of all customers (the exact histogram, weighted) at ``params``, patron's formula."""
    model = model_cls().with_params(params)
    stats = {c: exact[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    with np.errstate(all="ignore"):
        rows = model._log_likelihood_rows(np.log([params[p] for p in model.param_names]), stats)
    return float(exact["n_customers"].to_numpy(dtype=float) @ rows)


# ---- lifetimes and PyMC-Marketing ---------------------------------------------------------
def lifetimes_fit(fitter_cls: type, customers: pd.DataFrame, limit: int) -> tuple[float, dict[str, float], int]:
    """Seconds of lifetimes' fit on the first ``limit`` customers, scaled linearly to all; params; n used."""
    used = customers.iloc[: min(limit, len(customers))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, fitter = timed(lambda: fitter_cls().fit(used["frequency"], used["recency"], used["T"]))
    return seconds * len(customers) / len(used), dict(fitter.params_), len(used)


def pymc_map_fit(python: Path, customers: pd.DataFrame, limit: int) -> dict[str, Any] | None:
    """PyMC-Marketing's BetaGeoModel MAP fit run by ``python`` (a separate venv); None when absent."""
    if not python.exists():
        return None
    used = customers.iloc[: min(limit, len(customers))]
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "bg.npz"
        np.savez(data, x=used["frequency"].to_numpy(), r=used["recency"].to_numpy(), T=used["T"].to_numpy())
        done = subprocess.run([str(python), "-c", PYMC_SCRIPT, str(data)], capture_output=True, text=True,
                              timeout=1800, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["seconds_scaled"] = result["seconds"] * len(customers) / len(used)
    result["n_used"] = len(used)
    return result


# ---- scoring ------------------------------------------------------------------------------
def patron_scoring(model: Any, exact: pd.DataFrame, customers: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Rows/s and customers/s of p_alive and expected_purchases on distinct rows; CLV customers/s."""
    n_customers = float(exact["n_customers"].sum())
    p_alive_s, _ = timed(lambda: model.p_alive(exact), repeats)
    expected_s, _ = timed(lambda: model.expected_purchases(exact, t=52.0), repeats)
    spend = GammaGamma().with_params(GG_TRUTH)
    clv_s = 0.0
    for start in range(0, len(customers), CHUNK):
        chunk = customers.iloc[start : start + CHUNK]
        clv_s += timed(lambda chunk=chunk: customer_lifetime_value(model, spend, chunk, months=12))[0]
    return {
        "p_alive_rows_s": len(exact) / p_alive_s,
        "p_alive_customers_s": n_customers / p_alive_s,
        "expected_rows_s": len(exact) / expected_s,
        "expected_customers_s": n_customers / expected_s,
        "clv_customers_s": len(customers) / clv_s,
    }


def lifetimes_scoring(fitter_cls: type, params: dict[str, float], customers: pd.DataFrame) -> dict[str, float]:
    """Customers/s of lifetimes' P(alive), conditional expectation and CLV on per-customer rows."""
    fitter = fitter_cls()
    fitter.params_ = pd.Series(params)
    fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time  # what lifetimes' fit attaches
    spend = GammaGammaFitter()
    spend.params_ = pd.Series({"p": GG_TRUTH["p"], "q": GG_TRUTH["q"], "v": GG_TRUTH["gamma"]})
    f, r, t, m = (customers[c] for c in ("frequency", "recency", "T", "monetary_value"))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        p_alive_s, _ = timed(lambda: fitter.conditional_probability_alive(f, r, t))
        expected_s, _ = timed(lambda: fitter.conditional_expected_number_of_purchases_up_to_time(52.0, f, r, t))
        monthly_rate = 1.10 ** (1.0 / 12.0) - 1.0
        clv_s, _ = timed(lambda: spend.customer_lifetime_value(fitter, f, r, t, m, time=12, freq="W",
                                                               discount_rate=monthly_rate))
    n = len(customers)
    return {"p_alive_customers_s": n / p_alive_s, "expected_customers_s": n / expected_s, "clv_customers_s": n / clv_s}


# ---- the run ------------------------------------------------------------------------------
MODELS = {
    "BG/NBD": (simulate_bg_nbd, BetaGeo, BetaGeoFitter),
    "MBG/NBD": (simulate_bg_nbd, ModifiedBetaGeo, ModifiedBetaGeoFitter),  # fitted to the BG/NBD customers
    "Pareto/NBD": (simulate_pareto_nbd, ParetoNBD, ParetoNBDFitter),
}


def run_case(name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement for one model and one number of customers."""
    simulate, model_cls, fitter_cls = MODELS[name]
    customers = simulate(n)
    hist, hist_s = histograms(customers)
    exact, weekly = hist["exact"], hist["weekly"]
    exact_s, on_exact = timed(lambda: model_cls().fit(exact), args.repeats)
    weekly_s, on_weekly = timed(lambda: model_cls().fit(weekly), args.repeats)
    row: dict[str, Any] = {
        "model": name, "customers": n, "rows_exact": len(exact), "rows_weekly": len(weekly),
        "histograms_s": hist_s, "patron_exact_s": exact_s, "patron_weekly_s": weekly_s,
        "ll_patron_exact": exact_log_likelihood(model_cls, on_exact.params_, exact),
        "ll_patron_weekly": exact_log_likelihood(model_cls, on_weekly.params_, exact),
        "params_patron_exact": on_exact.params_,
    }
    limit = args.lifetimes_pnbd_customers if model_cls is ParetoNBD else args.lifetimes_customers
    if not args.skip_lifetimes:
        seconds, params, used = lifetimes_fit(fitter_cls, customers, limit)
        row.update(lifetimes_s=seconds, lifetimes_used=used, params_lifetimes=params)
        row["ll_lifetimes"] = exact_log_likelihood(model_cls, params, exact) if used == n else np.nan
        scored = customers.iloc[: args.lifetimes_score_customers]
        row["lifetimes_scoring"] = lifetimes_scoring(fitter_cls, on_exact.params_, scored)
    if model_cls is BetaGeo and n <= args.pymc_customers:
        row["pymc"] = pymc_map_fit(Path(args.pymc_python), customers, args.pymc_customers)
        if row["pymc"] and "params" in row["pymc"]:
            row["ll_pymc"] = exact_log_likelihood(model_cls, row["pymc"]["params"], exact)
    row["patron_scoring"] = patron_scoring(on_exact, exact, customers, args.repeats)
    return row


def report(row: dict[str, Any]) -> None:
    """Print one case as it finishes."""
    print(f"\n{row['model']} — {row['customers']:,} customers: {row['rows_exact']:,} distinct rows exact, "
          f"{row['rows_weekly']:,} weekly (histograms on DuckDB {row['histograms_s']:.2f} s)")
    print(f"  patron fit     exact {row['patron_exact_s']:8.2f} s   weekly {row['patron_weekly_s']:8.2f} s")
    if "lifetimes_s" in row:
        note = "" if row["lifetimes_used"] == row["customers"] else f" (fit on {row['lifetimes_used']:,}, scaled)"
        lt = row["lifetimes_s"]
        print(f"  lifetimes fit  {lt:8.2f} s{note}: x{lt / row['patron_exact_s']:.1f} (exact), "
              f"x{lt / row['patron_weekly_s']:.1f} (weekly)")
    print(f"  log-likelihood on the exact data: patron exact {row['ll_patron_exact']:.3f}, "
          f"patron weekly {row['ll_patron_weekly']:.3f}, lifetimes {row.get('ll_lifetimes', np.nan):.3f}")
    if row.get("pymc") is not None:
        print(f"  PyMC-Marketing MAP: {row['pymc']}  LL {row.get('ll_pymc', np.nan):.3f}")
    ps = row["patron_scoring"]
    print(f"  patron scoring: p_alive {ps['p_alive_rows_s']:,.0f} rows/s = {ps['p_alive_customers_s']:,.0f} "
          f"customers/s; expected {ps['expected_rows_s']:,.0f} rows/s = {ps['expected_customers_s']:,.0f} "
          f"customers/s; CLV {ps['clv_customers_s']:,.0f} customers/s")
    if "lifetimes_scoring" in row:
        ls = row["lifetimes_scoring"]
        print(f"  lifetimes scoring (customers/s): p_alive {ls['p_alive_customers_s']:,.0f}; expected "
              f"{ls['expected_customers_s']:,.0f}; CLV {ls['clv_customers_s']:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1, help="best of N for patron's fits and scoring")
    parser.add_argument("--lifetimes-customers", type=int, default=1_000_000,
                        help="lifetimes BG/NBD fits at most this many customers; larger runs are scaled linearly")
    parser.add_argument("--lifetimes-pnbd-customers", type=int, default=100_000,
                        help="the same for lifetimes' Pareto/NBD (Nelder-Mead: minutes per 100,000 customers)")
    parser.add_argument("--lifetimes-score-customers", type=int, default=200_000)
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--pymc-python", default="/tmp/pmvenv/bin/python",
                        help="python of a separate venv with pymc-marketing; skipped when it does not exist")
    parser.add_argument("--pymc-customers", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="write all measurements here")
    args = parser.parse_args()
    if not Path(args.pymc_python).exists():
        print(f"PyMC-Marketing: skipped, no interpreter at {args.pymc_python} (see --pymc-python)")
    rows = []
    for n in args.customers:
        for name in args.models:
            rows.append(run_case(name, n, args))
            report(rows[-1])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
