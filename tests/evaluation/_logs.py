"""Transaction logs the backtest tests share: CDNOW as published, and the synthetic retailer with identity solved."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from patron import datasets


def cdnow_transactions() -> ir.Table:
    """The CDNOW log (Fader, Hardie & Lee 2005): ``customer_key``, ``ordered_at`` (UTC) and ``value`` in dollars."""
    log = datasets.load_cdnow_transactions()
    return ibis.memtable(pd.DataFrame({
        "customer_key": log["customer_id"],
        "ordered_at": log["date"].dt.tz_localize("UTC"),
        "value": log["dollar_value"],
    }))


def retailer_transactions(customers: int, seed: int) -> pd.DataFrame:
    """Orders keyed by the true person (identity solved), valued at the true spend."""
    from patron.simulate import generate_retailer

    retailer = generate_retailer(customers=customers, seed=seed)
    orders = retailer.tables["orders"].select(["order_id", "ordered_at"]).to_pandas()
    truth = retailer.truth["truth_orders"].select(["order_id", "person_id", "spend_eur"]).to_pandas()
    frame = orders.merge(truth, on="order_id", validate="one_to_one")
    return frame.rename(columns={"person_id": "customer_key", "spend_eur": "gp2"})
