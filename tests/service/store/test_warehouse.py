"""The general store: an order recorded through Ibis and ``replace_rows``, in place or by a rewrite, alike."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from patron.engine import DuckDBWarehouse, Warehouse, connect
from patron.errors import Conflict
from patron.scoring.model_store import load_models
from patron.service.store.base import RecordedOrder
from patron.service.store.warehouse import WarehouseStore
from patron.transforms.observation import observation_end
from tests.service.conftest import Service, make_service


class RewritingWarehouse(DuckDBWarehouse):
    """DuckDB replacing rows the way engines without an in-place delete do (the base class's rewrite)."""

    replace_rows = Warehouse.replace_rows


@contextmanager
def general_store(scored_project: Path, folder: Path, *,
                  rewrite: bool = False) -> Iterator[tuple[Service, WarehouseStore]]:
    """A copy of the scored project and the general store over it (on a rewriting warehouse if ``rewrite``)."""
    own = make_service(scored_project, folder)
    with connect(own.settings) as opened:
        warehouse = RewritingWarehouse(opened.con, own.settings) if rewrite else opened
        yield own, WarehouseStore(warehouse, threading.Lock())


def order(order_id: str, key: str) -> dict[str, Any]:
    return {"order_id": order_id, "customer_key": key, "ordered_at": "2026-03-02T10:00:00+01:00",
            "channel": "online", "country": "DE", "store_id": None, "revenue": 40.0, "gp2": 10.0}


def customer_rows(warehouse: Warehouse, key: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("rfm", "scores", "order_values"):
        table = warehouse.table(name)
        out[name] = warehouse.to_pandas(table.filter(table.customer_key == key))
    return out


def record(scored_project: Path, folder: Path, *, rewrite: bool) -> tuple[RecordedOrder, dict[str, Any], int]:
    """Record one order of a repeat buyer; the answer, the customer's stored rows and the ``rfm`` row count."""
    with general_store(scored_project, folder, rewrite=rewrite) as (own, store):
        warehouse = store.warehouse
        rfm = warehouse.table("rfm")
        key = warehouse.to_pandas(rfm.filter(rfm.frequency >= 2).order_by("customer_key").limit(1)).customer_key[0]
        customers = warehouse.count(rfm)
        recorded = store.record_order(load_models(warehouse), own.settings, order("GEN-1", key), key_id="k")
        rows = customer_rows(warehouse, key)
        assert warehouse.count(warehouse.table("rfm")) == customers
        with pytest.raises(Conflict, match="'GEN-1' is recorded already"):
            store.record_order(load_models(warehouse), own.settings, order("GEN-1", key), key_id="k")
        values = warehouse.table("order_values")  # the refused repeat wrote nothing
        assert warehouse.count(warehouse.table("order_events")) == 1
        assert warehouse.count(values.filter(values.order_id == "GEN-1")) == 1
        assert store.observation_end(own.settings) == observation_end(warehouse, own.settings) == dt.date(2026, 3, 2)
    return recorded, rows, customers


def test_an_order_replaces_the_customers_rows_in_place_or_by_a_rewrite(scored_project: Path, tmp_path: Path) -> None:
    in_place, rows, _ = record(scored_project, tmp_path / "in_place", rewrite=False)
    rewritten, rewritten_rows, _ = record(scored_project, tmp_path / "rewrite", rewrite=True)
    assert in_place.observation_end == rewritten.observation_end == dt.date(2026, 3, 2)
    assert len(rows["rfm"]) == len(rows["scores"]) == 1
    assert "GEN-1" in set(rows["order_values"].order_id)
    assert rows["rfm"].frequency[0] == in_place.rfm["frequency"] and in_place.rfm["frequency"] >= 3
    assert rows["scores"].clv_12m[0] == pytest.approx(in_place.scores["clv_12m"], rel=1e-12)
    for name in ("rfm", "scores"):
        stored, other = rows[name].drop(columns=["scored_at"], errors="ignore"), rewritten_rows[name]
        pd.testing.assert_frame_equal(stored, other.drop(columns=["scored_at"], errors="ignore"), rtol=1e-12)
    assert in_place.rfm == rewritten.rfm


def test_without_a_scores_table_the_order_is_scored_not_stored(scored_project: Path, tmp_path: Path) -> None:
    with general_store(scored_project, tmp_path / "noscores") as (own, store):
        warehouse = store.warehouse
        key = warehouse.to_pandas(warehouse.table("rfm").order_by("customer_key").limit(1)).customer_key[0]
        warehouse.drop("scores")
        recorded = store.record_order(load_models(warehouse), own.settings, order("GEN-2", key), key_id="k")
        assert recorded.scores["customer_key"] == key and recorded.scores["p_alive"] is not None
        assert not warehouse.has_table("scores")
        assert store.customer(key, personal=False).rfm["n_orders"] == recorded.rfm["n_orders"]
        assert not store.customer("NOSUCHKEY", personal=True).exists()
