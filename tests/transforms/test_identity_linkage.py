"""Splink's model in identity resolution: a shared postcode counts for less where many records share it."""

from __future__ import annotations

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from patron.config import Settings
from patron.contract import CUSTOMERS, ORDERS
from patron.engine import DuckDBWarehouse
from patron.simulate import generate_retailer
from patron.transforms.identity import IdentitySettings, resolve_identities
from patron.transforms.identity_linkage import TF_COLUMNS

# Two pairs of records identical but for the postcode they share: "2100" is also held by
# 30 other records (with other names), "2999" by the pair alone. Nothing else links them.
PAIRS = [("TF-CROWD-1", "2100"), ("TF-CROWD-2", "2100"), ("TF-RARE-1", "2999"), ("TF-RARE-2", "2999")]
FILLER_NAMES = [(f"Zeta{chr(97 + i)}", f"Omega{chr(97 + i)}") for i in range(30)]


def _records() -> pa.Table:
    """Hand-made records in the contract's customers schema: the two pairs and the postcode's crowd."""
    rows = [{"customer_id": cid, "first_name": "Tove", "last_name": "Krogh", "postcode": code} for cid, code in PAIRS]
    rows += [{"customer_id": f"TF-F{i}", "first_name": first, "last_name": last, "postcode": "2100"}
             for i, (first, last) in enumerate(FILLER_NAMES)]
    frame = pd.DataFrame(rows).assign(source="crm", country="DK")
    for column in CUSTOMERS.column_names:
        if column not in frame:
            frame[column] = None
    return pa.Table.from_pandas(frame[list(CUSTOMERS.column_names)], schema=CUSTOMERS.schema().to_pyarrow(),
                                preserve_index=False)


def _memory_warehouse() -> DuckDBWarehouse:
    return DuckDBWarehouse(ibis.duckdb.connect(), Settings(engine="duckdb"))


def test_a_crowded_postcode_is_weaker_evidence() -> None:
    retailer = generate_retailer(customers=1500, seed=5)  # Splink needs data to learn from
    customers = pa.concat_tables([retailer.tables["customers"], _records().cast(retailer.tables["customers"].schema)])
    orders = retailer.tables["orders"].cast(ORDERS.schema().to_pyarrow())
    result = resolve_identities(ibis.memtable(customers), ibis.memtable(orders),
                                settings=IdentitySettings(match_threshold=0.01), backend=_memory_warehouse())
    keys = result.identity_map.to_pandas().set_index("customer_id")
    pairs = keys.loc[[cid for cid, _ in PAIRS]]
    assert (pairs["method"] == "probabilistic").all()
    crowd, rare = pairs["match_probability"].iloc[0], pairs["match_probability"].iloc[2]
    assert pairs["customer_key"].iloc[0] == pairs["customer_key"].iloc[1] != pairs["customer_key"].iloc[2]
    # the postcodes' frequencies are 32 and 2 records: their u, hence Bayes factors and odds,
    # are 16 apart (without the adjustment both pairs score the same)
    assert "postcode" in TF_COLUMNS
    assert (rare / (1 - rare)) / (crowd / (1 - crowd)) == pytest.approx(16.0, rel=1e-6)
