"""Benchmark: the foundation chain at scale — generate, ingest, validate, GP2 + RFM — against pandas.

Run ``.venv/bin/python -m benchmarks.bench_foundation --customers 1000000``. Steps:

1. generate the synthetic retailer and write it as Parquet;
2. patron on a DuckDB warehouse file: ingest the order tables (with every check and the
   rejects table), validate, then ``summarise`` (order GP2 in EUR, customer keys, RFM
   summary and histogram), each timed;
3. pandas doing the same GP2 + RFM summary from the same Parquet files (merges, then the
   summary the way ``lifetimes.utils.summary_data_from_transaction_data`` computes it);
4. a check that both give the same customers, frequency, recency and T, and GP2 per repeat
   purchase to 1e-6; the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from benchmarks.bench_rfm import pandas_summary
from patron import pipeline
from patron.config import load_settings, write_default_config
from patron.simulate import generate_retailer, write_retailer
from patron.tables import RFM

T = TypeVar("T")
ORDER_TABLES = ("fx_rates", "orders", "order_lines", "returns", "order_costs")


def timed(label: str, func: Callable[[], T], seconds: dict[str, float]) -> T:
    began = time.perf_counter()
    result = func()
    seconds[label] = time.perf_counter() - began
    print(f"  {label:<44} {seconds[label]:8.2f} s", flush=True)
    return result


def pandas_order_gp2(folder: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    """GP2 per order in EUR with pandas merges, the definition of ``patron.transforms.money``."""
    read = {name: pd.read_parquet(folder / f"{name}.parquet") for name in ORDER_TABLES}
    orders, lines, returns, costs, fx = (read[n] for n in ("orders", "order_lines", "returns", "order_costs",
                                                           "fx_rates"))
    orders = orders[orders["ordered_at"] < as_of]
    returns = returns[returns["returned_at"] < as_of]
    back = returns.groupby(["order_id", "line_no"], as_index=False).agg(
        returned=("quantity", "sum"), refunds=("refund_amount", "sum"), handling=("handling_cost", "sum"))
    lines = lines.merge(back, on=["order_id", "line_no"], how="left").fillna(
        {"returned": 0, "refunds": 0.0, "handling": 0.0, "discount": 0.0, "unit_cost": 0.0})
    lines["gross"] = lines["quantity"] * lines["unit_price"]
    lines["net"] = lines["gross"] - lines["discount"] - lines["refunds"]
    lines["cogs"] = (lines["quantity"] - lines["returned"]) * lines["unit_cost"]
    lines["share_base"] = lines["gross"] - lines["discount"]
    order_base = lines.groupby("order_id")["share_base"].transform("sum")
    n_lines = lines.groupby("order_id")["share_base"].transform("size")
    lines["share"] = np.where(order_base != 0, lines["share_base"] / order_base.replace(0, 1), 1.0 / n_lines)
    costs = costs.fillna(0.0).assign(fulfil=lambda c: c.shipping_cost + c.payment_fee + c.handling_cost)
    lines = lines.merge(costs[["order_id", "fulfil"]], on="order_id", how="left").fillna({"fulfil": 0.0})
    lines["gp2"] = lines["net"] - lines["cogs"] - lines["share"] * lines["fulfil"] - lines["handling"]
    per_order = lines.groupby("order_id", as_index=False)["gp2"].sum()
    orders = orders.merge(per_order, on="order_id", how="left")
    no_lines = orders["gp2"].isna()
    orders = orders.merge(costs[["order_id", "fulfil"]], on="order_id", how="left").fillna({"fulfil": 0.0})
    orders.loc[no_lines, "gp2"] = -orders.loc[no_lines, "fulfil"]
    orders["date"] = orders["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D")
    fx = fx.assign(date=pd.to_datetime(fx["date"]).astype(orders["date"].dtype)).sort_values("date")
    orders = pd.merge_asof(orders.sort_values("date"), fx[["currency", "date", "rate_to_reporting"]],
                           on="date", by="currency", direction="backward")
    orders["gp2"] = orders["gp2"] * orders["rate_to_reporting"]
    key = ("loyalty:" + orders["loyalty_id"]).where(orders["loyalty_id"].fillna("").str.strip() != "")
    email = ("email:" + orders["email"].str.strip().str.lower()).where(orders["email"].fillna("").str.strip() != "")
    account = (orders["source"] + ":" + orders["customer_id"]).where(
        orders["customer_id"].fillna("").str.strip() != "")
    orders["customer_key"] = account.fillna(key).fillna(email)
    return orders.dropna(subset=["customer_key"])[["customer_key", "ordered_at", "gp2"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_foundation_") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        print(f"{args.customers:,} customers")
        retailer = timed("generate", lambda: generate_retailer(customers=args.customers, seed=args.seed), seconds)
        timed("write parquet", lambda: write_retailer(retailer, data, fmt="parquet"), seconds)
        n_orders = retailer.tables["orders"].num_rows
        n_lines = retailer.tables["order_lines"].num_rows
        retailer = None  # free the arrays before ingest
        write_default_config(folder / "project")
        settings = load_settings(folder / "project")
        files = [data / f"{name}.parquet" for name in ORDER_TABLES]
        for file in files:
            timed(f"patron: ingest {file.stem}", lambda file=file: pipeline.ingest(settings, [file]), seconds)
        report = timed("patron: validate", lambda: pipeline.validate(settings), seconds)
        assert report.passed, [r.name for r in report.blocking_failures]
        summary = timed("patron: summarise (GP2, keys, RFM, histogram)", lambda: pipeline.summarise(settings),
                        seconds)
        end = pd.Timestamp(summary.observation_end, tz="UTC")
        as_of = end + pd.Timedelta(days=1)
        with pipeline.open_warehouse(settings) as warehouse:
            ours = warehouse.to_pandas(warehouse.table(RFM)).set_index("customer_key")
        log = timed("pandas: read parquet + GP2 per order", lambda: pandas_order_gp2(data, as_of), seconds)
        theirs = timed("pandas: RFM summary (lifetimes' way)",
                       lambda: pandas_summary(log.rename(columns={"gp2": "value"}), 7, end), seconds)
        ours = ours.loc[theirs.index]
        for column in ("frequency", "recency", "T"):
            assert np.array_equal(ours[column].to_numpy(float), theirs[column].to_numpy(float)), column
        gap = np.abs(ours["monetary_value"].to_numpy() - theirs["monetary_value"].to_numpy()).max()
        assert gap < 1e-6, gap
        print(f"  agree on {len(theirs):,} customers (max GP2-per-repeat gap {gap:.1e})")
    ingest = sum(v for k, v in seconds.items() if k.startswith("patron: ingest"))
    patron_summary = seconds["patron: summarise (GP2, keys, RFM, histogram)"]
    pandas_total = seconds["pandas: read parquet + GP2 per order"] + seconds["pandas: RFM summary (lifetimes' way)"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"orders {n_orders:,}, order lines {n_lines:,}")
    print(f"patron ingest of the order tables (checked, with rejects): {ingest:.1f} s "
          f"({(n_orders + n_lines) / ingest:,.0f} rows/s)")
    print(f"patron GP2 + RFM: {patron_summary:.1f} s; pandas GP2 + RFM: {pandas_total:.1f} s; "
          f"ratio pandas / patron = {pandas_total / patron_summary:.2f}")
    print(f"peak resident memory: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
