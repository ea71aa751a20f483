"""Lines follow the Gamma-Gamma spend, are priced from local price lists, and return at category rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.simulate import Retailer
from patron.simulate.catalog import local_price


@pytest.fixture(scope="module")
def lines(retailer: Retailer) -> pd.DataFrame:
    t = retailer.tables
    frame = t["order_lines"].to_pandas().merge(t["products"].to_pandas(), on="sku")
    return frame.merge(t["orders"].to_pandas(), on="order_id")


def test_order_value_tracks_the_gamma_gamma_draw(retailer: Retailer, lines: pd.DataFrame) -> None:
    gross = (lines["list_price"] * lines["quantity"]).groupby(lines["order_id"]).sum()
    target = retailer.truth["truth_orders"].to_pandas().set_index("order_id")["spend_eur"].loc[gross.index]
    ratio = gross / target
    assert 0.95 < ratio.median() < 1.12
    assert np.corrcoef(np.log(gross), np.log(target))[0, 1] > 0.9


def test_unit_price_is_the_local_list_price(lines: pd.DataFrame) -> None:
    for cur in ("EUR", "DKK", "JPY", "GBP"):
        rows = lines[lines["currency"] == cur]
        np.testing.assert_allclose(rows["unit_price"], local_price(rows["list_price"].to_numpy(), cur))
    dkk = lines.loc[lines["currency"] == "DKK", "unit_price"]
    assert ((dkk % 50) == 49).all()


def test_costs_are_below_prices_and_gold_costs_more(lines: pd.DataFrame) -> None:
    eur = lines[lines["currency"] == "EUR"]
    share = eur["unit_cost"] / eur["unit_price"]
    assert share.between(0.1, 0.6).all()
    by_material = share.groupby(eur["material"]).mean()
    assert by_material["gold"] > by_material["rose gold"] > by_material["silver"]


def test_category_return_rates(retailer: Retailer, lines: pd.DataFrame) -> None:
    returns = retailer.tables["returns"].to_pandas()
    early = lines[lines["ordered_at"] < pd.Timestamp("2025-10-01", tz="UTC")]
    key = pd.MultiIndex.from_frame(early[["order_id", "line_no"]])
    returned = key.isin(pd.MultiIndex.from_frame(returns[["order_id", "line_no"]]))
    rates = pd.Series(returned, index=early.index).groupby(early["category"]).agg(["mean", "size"])
    for category, configured in retailer.settings.return_rates.items():
        mean, size = rates.loc[category]
        assert abs(mean - configured) < 4 * np.sqrt(configured * (1 - configured) / size), category


def test_discounts_peak_on_black_friday(lines: pd.DataFrame) -> None:
    local = lines["ordered_at"].dt.tz_convert(None)
    bf = local.dt.strftime("%m-%d").isin(["11-25", "11-26", "11-27", "11-28", "11-29", "11-30"])
    discounted = lines["discount"] > 0
    assert discounted[bf].mean() > 1.8 * discounted[~bf].mean()
    assert (lines["discount"] <= lines["unit_price"] * lines["quantity"] * 0.31).all()
