"""The prepared-statement writer: one transaction per event, statements reused, scores stamped with the event's time."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from patron.engine import connect
from patron.scoring import live
from patron.scoring.batch import score_customers
from patron.scoring.model_store import FittedValueModels, load_models
from patron.service.store.duckdb import DuckDBStore
from tests.service.conftest import Service, make_service, sql

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def order(order_id: str, key: str, day: int = 1) -> dict[str, Any]:
    return {"order_id": order_id, "customer_key": key, "ordered_at": f"2026-03-{day:02d}T08:00:00+00:00",
            "channel": "online", "country": "DE", "store_id": None, "revenue": 50.0, "gp2": 12.5}


@contextmanager
def opened(scored_project: Path, folder: Path) -> Iterator[tuple[Service, DuckDBStore, FittedValueModels]]:
    """A copy of the scored project with its DuckDB store prepared and the champion models loaded."""
    own = make_service(scored_project, folder)
    with connect(own.settings) as warehouse:
        store = DuckDBStore(warehouse, threading.Lock())
        store.prepare()
        try:
            yield own, store, load_models(warehouse)
        finally:
            store.close()


def count(store: DuckDBStore, statement: str, value: str) -> int:
    return int(sql(store.warehouse, statement, [value])[0][0])


def test_a_failed_event_writes_nothing_and_the_next_builds_its_statements_again(
    scored_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(scored_project, tmp_path / "fail") as (own, store, models):
        key = sql(store.warehouse, "SELECT customer_key FROM rfm WHERE frequency = 1 ORDER BY 1 LIMIT 1")[0][0]
        store.record_order(models, own.settings, order("OK-1", key), key_id="k")  # statements now prepared

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the purchase model failed")

        monkeypatch.setattr(live, "row_inputs", broken)
        with pytest.raises(RuntimeError):
            store.record_order(models, own.settings, order("FAIL-1", key, day=2), key_id="k")
        # the order's rows and the customer's rfm delete were rolled back together
        assert count(store, "SELECT count(*) FROM order_values WHERE order_id = ?", "FAIL-1") == 0
        assert count(store, "SELECT count(*) FROM order_events WHERE order_id = ?", "FAIL-1") == 0
        assert count(store, "SELECT frequency FROM rfm WHERE customer_key = ?", key) == 2
        assert count(store, "SELECT count(*) FROM scores WHERE customer_key = ?", key) == 1
        monkeypatch.undo()
        recorded = store.record_order(models, own.settings, order("FAIL-1", key, day=2), key_id="k")
        assert recorded.rfm["frequency"] == 3 and recorded.scores["customer_key"] == key


def test_statements_are_prepared_once_and_scores_carry_the_event_time(scored_project: Path, tmp_path: Path) -> None:
    with opened(scored_project, tmp_path / "reuse") as (own, store, models):
        rows = sql(store.warehouse, "SELECT customer_key, n_orders FROM rfm ORDER BY 1 LIMIT 4")
        customers = sql(store.warehouse, "SELECT count(*) FROM rfm")[0][0]
        stamps, prepared = [], []
        for i, (key, n_orders) in enumerate(rows):
            before = dt.datetime.now(dt.UTC)
            recorded = store.record_order(models, own.settings, order(f"R-{i}", key), key_id="k")
            # each event rescored its own customer (a statement's inputs are read when it runs, not prepared in)
            assert recorded.rfm["customer_key"] == recorded.scores["customer_key"] == key
            assert recorded.rfm["n_orders"] == n_orders + 1
            assert count(store, "SELECT n_orders FROM rfm WHERE customer_key = ?", key) == n_orders + 1
            assert before <= recorded.scores["scored_at"] <= dt.datetime.now(dt.UTC)
            stored = sql(store.warehouse, "SELECT epoch_us(scored_at) FROM scores WHERE customer_key = ?", [key])
            assert stored[0][0] == (recorded.scores["scored_at"] - EPOCH) // dt.timedelta(microseconds=1)
            stamps.append(recorded.scores["scored_at"])
            prepared.append(dict(store.writer._prepared))
        assert stamps == sorted(set(stamps))
        assert sql(store.warehouse, "SELECT count(*) FROM rfm")[0][0] == customers
        # the first event created the input tables, so its statements were prepared again once; then reused
        assert prepared[1] == prepared[2] == prepared[3] and len(prepared[3]) >= 8


def test_scores_follow_the_table_when_another_write_drops_or_rebuilds_it(scored_project: Path, tmp_path: Path) -> None:
    with opened(scored_project, tmp_path / "swap") as (own, store, models):
        key = sql(store.warehouse, "SELECT customer_key FROM rfm ORDER BY 1 LIMIT 1")[0][0]
        store.record_order(models, own.settings, order("S-0", key), key_id="k")
        with store.use() as locked:
            locked.drop("scores")
        without = store.record_order(models, own.settings, order("S-1", key, day=2), key_id="k")
        assert without.scores["customer_key"] == key and without.scores["p_alive"] is not None
        assert not store.warehouse.has_table("scores")  # scored, not stored
        with store.use() as locked:  # what POST /score does
            score_customers(locked, models, settings=own.settings)
        stored = store.record_order(models, own.settings, order("S-2", key, day=3), key_id="k")
        at, clv = sql(store.warehouse, "SELECT epoch_us(scored_at), clv_12m FROM scores WHERE customer_key = ?",
                      [key])[0]
        assert at == (stored.scores["scored_at"] - EPOCH) // dt.timedelta(microseconds=1)
        assert clv == pytest.approx(stored.scores["clv_12m"], rel=1e-12)
