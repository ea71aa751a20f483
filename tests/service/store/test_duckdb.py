"""The DuckDB fast path gives what the general store gives, uses its indexes, and reads without the lock."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patron.engine import DuckDBWarehouse, connect
from patron.insights.customer_view import customer_view
from patron.scoring.model_store import load_models
from patron.service.schemas import CustomerView, Scores
from patron.service.store import open_store
from patron.service.store.base import CustomerRows, RecordedOrder, ServiceStore
from patron.service.store.duckdb import INDEXES, DuckDBStore
from patron.service.store.warehouse import WarehouseStore
from patron.tables import SEASONALITY
from patron.transforms.rfm import rfm_summary
from tests.service.conftest import make_service, sql

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative (sums may differ in the last bit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


@pytest.fixture(scope="module")
def stores(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    own = make_service(scored_project, tmp_path_factory.mktemp("stores"))
    warehouse = connect(own.settings)
    lock = threading.Lock()
    fast = open_store(warehouse, lock)
    assert isinstance(fast, DuckDBStore)
    fast.prepare()
    yield fast, WarehouseStore(warehouse, lock), warehouse
    fast.close()
    warehouse.close()


def sample_keys(warehouse: DuckDBWarehouse) -> list[str]:
    """Customers with and without repeat orders, several source records, and a key nobody has."""
    rows = sql(warehouse, "SELECT customer_key FROM identity_map GROUP BY customer_key "
                          "ORDER BY count(*) DESC, customer_key LIMIT 3")
    rfm = sql(warehouse, "SELECT customer_key FROM rfm WHERE frequency IN (0, 3) ORDER BY customer_key LIMIT 6")
    return [r[0] for r in rows + rfm] + ["NOSUCHKEY"]


def answer(key: str, rows: CustomerRows) -> dict[str, Any]:
    """The JSON the endpoint sends for these rows."""
    return CustomerView.model_validate(customer_view(key, rows, personal=True)).model_dump(mode="json")


def test_the_fast_path_reads_what_the_general_path_reads(stores: Any) -> None:
    fast, generic, warehouse = stores
    keys = sample_keys(warehouse)
    many_sources = 0
    for key in keys:
        quick, slow = fast.customer(key, personal=True), generic.customer(key, personal=True)
        assert quick.exists() == slow.exists() == (key != "NOSUCHKEY")
        if not quick.exists():
            continue
        many_sources += len(quick.personal) > 1
        assert isinstance(quick.rfm["first_purchase_at"], dt.datetime)
        assert quick.rfm["first_purchase_at"].utcoffset() == dt.timedelta(0)
        assert same(answer(key, quick), answer(key, slow)), key
        assert same(sorted(quick.orders, key=lambda o: o["order_id"]), sorted(slow.orders, key=lambda o: o["order_id"]))
    assert many_sources >= 1  # the personal records of a person with several source records were compared


def test_point_reads_use_the_indexes_built_at_start_up(stores: Any) -> None:
    fast, _, warehouse = stores
    built = {row[0] for row in sql(warehouse, "SELECT index_name FROM duckdb_indexes()")}
    assert {f"{t}_{c}_idx" for t, c in INDEXES if t != "car"} <= built  # the test project has no car table
    plan = fast.cursor().execute("EXPLAIN ANALYZE SELECT * FROM rfm WHERE customer_key = ?", ["C0"]).fetchall()
    assert "Index Scan" in str(plan) or "INDEX_SCAN" in str(plan)


def test_a_batch_table_swap_drops_the_index_and_the_next_start_up_builds_it(
    scored_project: Path, tmp_path: Path
) -> None:
    own = make_service(scored_project, tmp_path / "swap")
    with connect(own.settings) as warehouse:
        store = DuckDBStore(warehouse, threading.Lock())
        store.prepare()
        key = sql(warehouse, "SELECT customer_key FROM rfm ORDER BY customer_key LIMIT 1")[0][0]
        before = store.customer(key, personal=False).rfm
        warehouse.write("rfm", warehouse.to_pandas(warehouse.table("rfm")))  # what `patron summarise` does
        indexes = "SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'rfm'"
        assert sql(warehouse, indexes)[0][0] == 0
        assert same(store.customer(key, personal=False).rfm, before)  # still read, by a scan
        store.prepare()
        assert sql(warehouse, indexes)[0][0] == 1
        store.close()


def test_reads_do_not_wait_for_the_write_lock(stores: Any) -> None:
    fast, _, warehouse = stores
    key = sample_keys(warehouse)[0]
    found: list[bool] = []
    with fast.lock:  # a long write holds the lock
        reader = threading.Thread(target=lambda: found.append(fast.customer(key, personal=True).exists()))
        reader.start()
        reader.join(timeout=20)
    assert found == [True]


Change = Callable[[DuckDBWarehouse], None]


def record_on(store_kind: str, scored_project: Path, folder: Path, events: list[dict[str, Any]], *,
              before: Change | None = None, between: Change | None = None) -> tuple[RecordedOrder, int]:
    """Record ``events`` in turn on a fresh copy changed by ``before``, ``between`` changing it (through the
    store) after the first event; what the last one recorded, and the ``scored_at`` its customer's row of
    ``scores`` holds afterwards (microseconds since 1970)."""
    own = make_service(scored_project, folder)
    with connect(own.settings) as warehouse:
        if before is not None:
            before(warehouse)
        lock = threading.Lock()
        store: ServiceStore = DuckDBStore(warehouse, lock) if store_kind == "fast" else WarehouseStore(warehouse, lock)
        store.prepare()
        for i, event in enumerate(events):
            recorded = store.record_order(load_models(warehouse), own.settings, event, key_id="k")
            if i == 0 and between is not None:
                with store.use() as used:
                    between(used)
        store.close()
        stored = sql(warehouse, "SELECT epoch_us(scored_at) FROM scores WHERE customer_key = ?",
                     [events[-1]["customer_key"]])
    return recorded, stored[0][0]


def same_records(fast: RecordedOrder, slow: RecordedOrder) -> bool:
    """The two recorded rows as the endpoint sends them, ``scored_at`` aside."""
    for quick, reference in ((fast.rfm, slow.rfm), (fast.scores, slow.scores)):
        if list(quick) != list(reference):
            return False
        sent, expected = (Scores.model_validate(rows).model_dump(mode="json") for rows in (quick, reference))
        sent.pop("scored_at", None)
        expected.pop("scored_at", None)
        if not same(sent, expected):
            return False
    return True


def repeat_orders(scored_project: Path, folder: Path) -> list[dict[str, Any]]:
    """Orders of three repeat buyers on 2026-03-01."""
    with connect(make_service(scored_project, folder).settings) as peek:
        keys = [r[0] for r in sql(peek, "SELECT customer_key FROM rfm WHERE frequency >= 2 ORDER BY 1 LIMIT 3")]
    return [{"order_id": f"SAME-{i}", "customer_key": key, "ordered_at": "2026-03-01T08:00:00+00:00",
             "channel": "store", "country": "DE", "store_id": "DE-S001", "revenue": 75.0 + i, "gp2": 20.0}
            for i, key in enumerate(keys)]


def on_the_calendar(warehouse: DuckDBWarehouse) -> None:
    """``rfm`` summarised on the calendar, as with ``[model] seasonality = "off"``."""
    end = sql(warehouse, "SELECT max(ordered_at)::DATE FROM order_values")[0][0]
    warehouse.write("rfm", rfm_summary(warehouse.table("order_values"), observation_end=end))
    warehouse.drop(SEASONALITY)


def another_clock(warehouse: DuckDBWarehouse) -> None:
    """A batch run that stored another seasonal clock (the months' intensities in reverse)."""
    frame = warehouse.to_pandas(warehouse.table(SEASONALITY)).sort_values(["market", "month"])
    frame["intensity"] = frame.groupby("market")["intensity"].transform(lambda s: s.to_numpy()[::-1])
    warehouse.write(SEASONALITY, frame)


def test_an_order_recorded_on_the_fast_path_equals_the_general_path(scored_project: Path, tmp_path: Path) -> None:
    # two orders of other customers first: the fast path's third event runs statements prepared before it
    events = repeat_orders(scored_project, tmp_path / "peek")
    key = events[-1]["customer_key"]
    fast, fast_stored = record_on("fast", scored_project, tmp_path / "fast", events)
    slow, slow_stored = record_on("general", scored_project, tmp_path / "slow", events)
    assert fast.observation_end == slow.observation_end == dt.date(2026, 3, 1)
    assert fast.rfm["frequency"] >= 3 and fast.scores["customer_key"] == key
    assert isinstance(fast.scores["expected_next_order_date"], dt.date)
    for recorded, stored in ((fast, fast_stored), (slow, slow_stored)):  # the scored_at it stored, in UTC
        scored_at = recorded.scores["scored_at"]
        assert isinstance(scored_at, dt.datetime) and scored_at.utcoffset() == dt.timedelta(0)
        assert (scored_at - EPOCH) // dt.timedelta(microseconds=1) == stored
        assert "scored_at" not in recorded.rfm
    for quick, reference in ((fast.rfm, slow.rfm), (fast.scores, slow.scores)):
        assert list(quick) == list(reference)
        # as the endpoint sends them (the general path gives the date column as a datetime)
        sent, expected = (Scores.model_validate(rows).model_dump(mode="json") for rows in (quick, reference))
        sent.pop("scored_at", None)
        expected.pop("scored_at", None)
        assert same(sent, expected)


@pytest.mark.parametrize("change", ["calendar", "new clock"])
def test_the_fast_path_follows_the_clock_of_rfm(scored_project: Path, tmp_path: Path, change: str) -> None:
    """On the calendar (no clock stored) and after a batch run stored another clock, as the general path."""
    events = repeat_orders(scored_project, tmp_path / "peek")
    changes: dict[str, Change] = {"before": on_the_calendar} if change == "calendar" else {"between": another_clock}
    fast, _ = record_on("fast", scored_project, tmp_path / "fast", events, **changes)
    slow, _ = record_on("general", scored_project, tmp_path / "slow", events, **changes)
    assert ("market" in fast.rfm) == (change != "calendar")
    assert fast.rfm["customer_key"] == events[-1]["customer_key"]
    assert same_records(fast, slow)
    if change == "new clock":  # the new clock counts: the row differs from one on the old clock
        old, _ = record_on("general", scored_project, tmp_path / "old", events)
        assert not same_records(fast, old)
