"""The dashboard's numbers against an independent pandas computation over the scored project's orders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from patron.config import SegmentSettings
from patron.errors import PatronError
from patron.insights import dashboard as d
from patron.insights.definitions import Period
from patron.transforms import summaries
from tests.conftest import warehouse_copy


@pytest.fixture(scope="module")
def backend(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ibis.BaseBackend]:
    """A copy of the scored project's warehouse (other tests share the original), as a plain Ibis backend."""
    con = warehouse_copy(scored_project, tmp_path_factory.mktemp("dashboard"))
    yield con
    con.disconnect()


@pytest.fixture(scope="module")
def src(backend: ibis.BaseBackend) -> d.Sources:
    return d.sources(backend)


@pytest.fixture(scope="module")
def orders(backend: ibis.BaseBackend) -> pd.DataFrame:
    """``order_values`` in pandas with each order's month number and market."""
    frame = backend.to_pandas(backend.table("order_values"))
    stamp = pd.to_datetime(frame["ordered_at"], utc=True)
    frame["m"] = stamp.dt.year * 12 + stamp.dt.month - 1
    frame["market"] = frame["country"].fillna("??")
    return frame


def first_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Each customer's earliest order (ties by order id)."""
    known = orders[orders["customer_key"].notna()].sort_values(["ordered_at", "order_id"])
    return known.drop_duplicates("customer_key").set_index("customer_key")


def lapses(known: pd.DataFrame, p: Period) -> int:
    """How many times a customer's latest order turned more than 12 months old in a month of ``p``."""
    count = 0
    for months in known.groupby("customer_key")["m"].unique():
        ordered = sorted(months)
        for m, following in zip(ordered, [*ordered[1:], None], strict=True):
            if (following is None or following - m >= 12) and p.start <= m + 12 <= p.end:
                count += 1
    return count


def expected_tiles(orders: pd.DataFrame, p: Period, market: str | None) -> dict[str, float]:
    """Every period KPI of ``p`` from the orders, as docs/metrics.md defines them."""
    firsts = first_orders(orders)
    acquired = firsts if market is None else firsts[firsts["market"] == market]
    mk = orders if market is None else orders[orders["market"] == market]
    inside = mk[mk["m"].between(p.start, p.end)]
    known = mk[mk["customer_key"].notna()]

    def keys(frame: pd.DataFrame) -> set[str]:
        return set(frame["customer_key"].dropna())

    bought = keys(inside)
    per_customer = inside.groupby("customer_key")["order_id"].nunique()
    repeat = set(per_customer[per_customer >= 2].index)
    active_end = keys(known[known["m"].between(p.end - 11, p.end)])
    active_start = keys(known[known["m"].between(p.start - 12, p.start - 1)])
    ever = keys(known[known["m"] <= p.end])
    new = set(acquired[acquired["m"].between(p.start, p.end)].index)
    churned = lapses(known, p)
    revenue, gp2, n_orders = inside["revenue"].sum(), inside["gp2"].sum(), inside["order_id"].nunique()
    return {
        "revenue": revenue, "gp2": gp2, "gp2_margin": gp2 / revenue, "orders": n_orders,
        "customers": len(bought), "active_customers": len(active_end), "new_customers": len(new),
        "repeat_purchase_rate": len(repeat) / len(bought), "lapsed_customers": len(ever - active_end),
        "churned_customers": churned, "churn_rate": churned / len(active_start),
        "average_order_value": revenue / n_orders,
        "gp2_per_customer": inside[inside["customer_key"].notna()]["gp2"].sum() / len(bought),
    }


def test_the_default_period_is_the_last_12_complete_months_against_the_12_before(src: d.Sources) -> None:
    data = d.data_range(src)
    sel = d.select(src)
    assert sel.period.months == sel.previous.months == 12
    assert sel.period.last == data.last_complete and sel.previous.last == Period.month_at(sel.period.start - 1)
    assert data.last_complete <= data.last


@pytest.mark.parametrize(("period", "market"), [(None, None), ("2024-03..2024-08", "DE")])
def test_tiles_match_the_definitions_computed_in_pandas(src: d.Sources, orders: pd.DataFrame,
                                                        backend: ibis.BaseBackend, period: str | None,
                                                        market: str | None) -> None:
    sel = d.select(src, period, market=market)
    shown = d.tiles(src, sel).set_index("name")
    for label, p in (("current", sel.period), ("previous", sel.previous)):
        for name, value in expected_tiles(orders, p, market).items():
            assert shown.at[name, label] == pytest.approx(value, rel=1e-9), (name, label)
    scores = backend.to_pandas(backend.table("scores"))
    if market is not None:
        acquired = first_orders(orders)
        scores = scores[scores["customer_key"].map(acquired["market"]) == market]
    assert shown.at["clv_12m", "current"] == pytest.approx(scores["clv_12m"].sum())
    assert pd.isna(shown.at["clv_12m", "previous"])
    row = shown.loc["revenue"]
    assert row["change"] == pytest.approx(row["current"] - row["previous"])
    assert row["change_relative"] == pytest.approx(row["change"] / row["previous"])


@pytest.mark.parametrize(("period", "compare", "market", "token"), [
    ("2024-13..2025-01", None, None, "2024-13"),
    ("2024-1..2024-06", None, None, "2024-1"),
    ("2024-06..2024-01", None, None, "2024-06..2024-01"),
    ("2019-01..2019-12", None, None, "2019-01..2019-12"),
    ("2024-01..2024-06", "1999-01..1999-06", None, "1999-01..1999-06"),
    (None, None, "ZZ", "ZZ"),
    (None, None, "Germany", "Germany"),
])
def test_bad_input_is_refused_naming_the_token(src: d.Sources, period: str | None, compare: str | None,
                                              market: str | None, token: str) -> None:
    with pytest.raises(PatronError, match=token.replace("?", r"\?").replace(".", r"\.")):
        d.select(src, period, compare, market)


def test_trends_match_pandas_per_month_and_market(src: d.Sources, orders: pd.DataFrame) -> None:
    sel = d.select(src)
    shown = d.trends(src, sel)
    months = range(sel.previous.start, sel.period.end + 1)
    assert sorted(shown["market"].unique()) == sorted([*orders["market"].unique(), summaries.ALL_MARKETS])
    for market in ("DE", summaries.ALL_MARKETS):
        mine = shown[shown["market"] == market].set_index("month")
        mk = orders if market == summaries.ALL_MARKETS else orders[orders["market"] == market]
        assert len(mine) == len(months)
        for m in months:
            row = mine.loc[Period.month_at(m)]
            inside = mk[mk["m"] == m]
            assert row["revenue"] == pytest.approx(inside["revenue"].sum())
            assert row["orders"] == inside["order_id"].nunique()
            active = mk[mk["m"].between(m - 11, m)]["customer_key"].dropna().nunique()
            assert row["active_customers"] == active


def test_clv_tiers_come_in_tier_order_with_their_shares(src: d.Sources, backend: ibis.BaseBackend) -> None:
    shown = d.clv_tiers(src, d.select(src))
    segments = backend.to_pandas(backend.table("segments"))
    assert list(shown["value_tier"]) == list(SegmentSettings().tier_names)
    expected = segments.groupby("value_tier")["clv"].agg(["size", "sum"])
    for row in shown.itertuples():
        assert row.customers == expected.at[row.value_tier, "size"]
        assert row.clv == pytest.approx(expected.at[row.value_tier, "sum"])
    assert shown["customer_share"].sum() == pytest.approx(1.0)
    assert shown["clv_share"].sum() == pytest.approx(1.0)


def test_the_lorenz_curve_and_gini_of_clv(src: d.Sources, backend: ibis.BaseBackend) -> None:
    shown = d.lorenz(src, d.select(src), points=10)
    values = np.sort(backend.to_pandas(backend.table("scores"))["clv_12m"].dropna().to_numpy())
    n = len(values)
    gini = 2 * np.sum(np.arange(1, n + 1) * values) / (n * values.sum()) - (n + 1) / n
    assert shown.customers == n and shown.gini == pytest.approx(gini)
    curve = shown.curve
    assert len(curve) == 11 and tuple(curve.iloc[0]) == (0.0, 0.0) and tuple(curve.iloc[-1]) == (1.0, 1.0)
    half = int(curve["customer_share"].searchsorted(0.5))
    k = round(curve["customer_share"].iloc[half] * n)
    assert curve["clv_share"].iloc[half] == pytest.approx(values[:k].sum() / values.sum())


def pandas_tiers(orders: pd.DataFrame, p: Period, shares: SegmentSettings) -> pd.Series:
    """Each buyer's period tier: rank by the period's GP2 (equal GP2 share the best rank), first tier with
    rank <= share x n."""
    inside = orders[orders["m"].between(p.start, p.end) & orders["customer_key"].notna()]
    gp2 = inside.groupby("customer_key")["gp2"].sum()
    ranks = gp2.rank(method="min", ascending=False)
    n = len(gp2)
    return ranks.map(lambda rank: next(name for name, share in zip(shares.tier_names, shares.tier_shares, strict=True)
                                       if rank <= share * n + 1e-9))


def test_tier_migration_matches_period_tiers_computed_in_pandas(src: d.Sources, orders: pd.DataFrame) -> None:
    sel = d.select(src)
    shown = d.tier_migration(src, sel)
    before, after = pandas_tiers(orders, sel.previous, src.tiers), pandas_tiers(orders, sel.period, src.tiers)
    pairs = pd.DataFrame({"from_tier": before, "to_tier": after}).fillna(d.NO_PURCHASE)
    expected = pairs.value_counts().to_dict()
    assert {(r.from_tier, r.to_tier): r.customers for r in shown.itertuples()} == expected
    assert shown["customers"].sum() == len(set(before.index) | set(after.index))
    order = [*src.tiers.tier_names, d.NO_PURCHASE]
    assert list(shown["from_tier"].map(order.index)) == sorted(shown["from_tier"].map(order.index))


def test_cohort_retention_matches_pandas(src: d.Sources, orders: pd.DataFrame) -> None:
    sel = d.select(src, "2024-01..2024-12", market="GB")
    shown = d.cohort_retention(src, sel)
    firsts = first_orders(orders)
    cohort = firsts[(firsts["market"] == "GB") & firsts["m"].between(sel.previous.start, sel.period.end)]["m"]
    known = orders[orders["customer_key"].isin(cohort.index)]
    active = known[known["m"] <= sel.period.end].groupby("customer_key")["m"].unique()
    counts: dict[tuple[int, int], int] = {}
    for key, months in active.items():
        for m in months:
            counts[(cohort[key], m - cohort[key])] = counts.get((cohort[key], m - cohort[key]), 0) + 1
    mine = {(Period.index_of(r.cohort), r.months_since): r.customers for r in shown.itertuples()}
    assert mine == counts
    assert (shown.loc[shown["months_since"] == 0, "share"] == 1.0).all()
    sizes = cohort.value_counts()
    assert all(r.cohort_size == sizes[Period.index_of(r.cohort)] for r in shown.itertuples())


def test_forecast_against_actual_reads_the_champion_of_each_backtest(src: d.Sources,
                                                                     backend: ibis.BaseBackend) -> None:
    assert d.forecast_vs_actual(src).empty  # no backtest run yet
    rows = []
    for run, end, created in (("old", "2024-06-30", "2026-01-01"), ("new", "2025-06-30", "2026-02-01")):
        for model, rmse, predicted in (("bg_nbd", 1.0, 100.0), ("pareto_nbd", 2.0, 130.0)):
            metrics = {"rmse": rmse, "total_error_relative": predicted / 110 - 1, "predicted_total": predicted,
                       "actual_total": 110.0}
            rows += [{"run_id": run, "model": model, "metric": k, "value": v,
                      "calibration_end": pd.Timestamp("2023-06-30"), "holdout_end": pd.Timestamp(end),
                      "created_at": pd.Timestamp(created, tz="UTC")}
                     for k, v in metrics.items()]
    backend.create_table("backtests", pd.DataFrame(rows), overwrite=True)
    try:
        shown = d.forecast_vs_actual(d.sources(backend))
    finally:
        backend.drop_table("backtests")
    assert list(shown["run_id"]) == ["old", "new"] and set(shown["model"]) == {"bg_nbd"}
    assert list(shown["predicted"]) == [100.0, 100.0] and list(shown["actual"]) == [110.0, 110.0]
    assert list(shown["month"].astype(str)) == ["2024-06-01", "2025-06-01"]


def test_the_published_summaries_give_the_same_numbers_as_order_values(backend: ibis.BaseBackend,
                                                                       tmp_path: Path) -> None:
    """A serving version's Parquet files (summaries published) answer as the warehouse does."""
    from patron.config import Settings
    from patron.engine import parquet_snapshot

    months = summaries.customer_months(backend.table("order_values"))
    files = {}
    for name, expr in ((summaries.CUSTOMER_MONTHS, months),
                       (summaries.COHORT_ACTIVITY, summaries.cohort_activity(months)),
                       (summaries.ACTIVE_CUSTOMERS_MONTHLY, summaries.active_customers_monthly(months)),
                       ("scores", backend.table("scores")), ("segments", backend.table("segments"))):
        files[name] = tmp_path / f"{name}.parquet"
        backend.to_parquet(expr, files[name])
    snapshot = parquet_snapshot(Settings(project_dir=tmp_path), files)
    published, direct = d.sources(snapshot), d.sources(backend)
    sel = d.select(direct, market="FR")
    assert d.select(published, market="FR") == sel
    pd.testing.assert_frame_equal(d.tiles(published, sel), d.tiles(direct, sel))
    pd.testing.assert_frame_equal(d.trends(published, sel), d.trends(direct, sel))
    pd.testing.assert_frame_equal(d.cohort_retention(published, sel), d.cohort_retention(direct, sel))
    pd.testing.assert_frame_equal(d.tier_migration(published, sel), d.tier_migration(direct, sel))
