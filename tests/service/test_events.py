"""POST /events: a new order is logged, its customer is rescored (by the next lookup, or at once when asked) as a
batch run over the same orders would, and the batch's next run takes it exactly once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from patron import pipeline
from patron.config import Settings
from patron.engine import connect
from patron.scoring.batch import score_customers
from patron.scoring.model_store import load_models
from patron.service.app import create_app
from patron.serving.events import PENDING
from patron.serving.online import open_online_store
from patron.transforms.rfm import rfm_summary
from patron.transforms.seasonality import POOLED, stored_seasonality
from tests.service.conftest import make_service

NEW_ORDER_AT = "2026-02-10T15:30:00+01:00"  # after the generated data end: the observation end moves to this day


@pytest.fixture(scope="module")
def outcome(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Post one order of a repeat buyer and one of a new customer; then let the batch take them and rescore.

    The batch summarised ``rfm`` on a seasonal clock (two years of orders): the live rows must be on it too.
    """
    own = make_service(scored_project, tmp_path_factory.mktemp("events"))
    with connect(own.settings) as warehouse:
        rfm = warehouse.table("rfm")
        before = warehouse.to_pandas(rfm.filter(rfm.frequency >= 2).order_by("customer_key").limit(1)).iloc[0]
        clock = stored_seasonality(warehouse)  # the published version's clock
    assert clock is not None and not clock.is_flat
    key = str(before["customer_key"])
    headers = own.headers("admin")
    with TestClient(create_app(own.settings)) as client:
        posted = client.post("/events", headers=headers, json={
            "order_id": "API-0001", "customer_key": key, "ordered_at": NEW_ORDER_AT,
            "channel": "online", "country": "DE", "revenue": 120.0, "gp2": 45.5})
        pending = _live_doc(own.settings, key)
        view = client.get(f"/customers/{key}", headers=headers).json()  # rescores the customer
        after_lookup = _live_doc(own.settings, key)
        newcomer = client.post("/events?rescore=true", headers=headers, json={
            "order_id": "API-0002", "customer_key": "Cnewcustomer0001", "ordered_at": "2026-02-09T10:00:00Z",
            "channel": "store", "store_id": "DE-S001", "revenue": 80.0, "gp2": 30.0})
        again = client.post("/events", headers=headers, json={
            "order_id": "API-0001", "customer_key": key, "ordered_at": NEW_ORDER_AT, "revenue": 1.0, "gp2": 0.0})
    # the batch's next run takes the logged orders, then rebuilds from the contract tables
    pipeline.summarise(own.settings)
    pipeline.summarise(own.settings)  # a second run takes nothing twice
    with connect(own.settings) as warehouse:
        events = warehouse.to_pandas(warehouse.table("order_events"))
        values = warehouse.table("order_values")
        rebuilt = warehouse.to_pandas(values.filter(values.order_id.isin(["API-0001", "API-0002"])))
        rebuilt_rfm = warehouse.to_pandas(warehouse.table("rfm")).set_index("customer_key")
        rebuilt_clock = stored_seasonality(warehouse)
        # a batch rescore of the same orders on the version's clock and models
        end = dt.date(2026, 2, 10)
        warehouse.write("rfm", rfm_summary(values, observation_end=end, unit_days=own.settings.model.unit_days,
                                           clock=clock))
        score_customers(warehouse, load_models(warehouse), settings=own.settings, observation_end=end,
                        table="scores_batch", clock=clock)
        batch = warehouse.to_pandas(warehouse.table("scores_batch")).set_index("customer_key")
        batch_rfm = warehouse.to_pandas(warehouse.table("rfm")).set_index("customer_key")
    return {"key": key, "before": before, "posted": posted, "newcomer": newcomer, "again": again, "view": view,
            "pending": pending, "after_lookup": after_lookup,
            "events": events, "clock": clock, "batch": batch, "batch_rfm": batch_rfm, "rebuilt": rebuilt,
            "rebuilt_rfm": rebuilt_rfm, "rebuilt_clock": rebuilt_clock}


def _live_doc(settings: Settings, key: str) -> dict[str, Any]:
    with open_online_store(settings) as store:
        live = store.live(key)
    assert live is not None
    return dict(json.loads(live.doc))


def test_the_event_answers_before_rescoring_and_the_next_lookup_rescores(outcome: dict[str, Any]) -> None:
    body = outcome["posted"].json()
    assert outcome["posted"].status_code == 201, body
    assert (body["rescored"], body["rfm"], body["scores"]) == (False, None, None)
    assert outcome["pending"][PENDING] is True and outcome["pending"]["orders"][0]["order_id"] == "API-0001"
    assert outcome["pending"]["rfm"]["frequency"] == outcome["before"]["frequency"]  # not rescored yet
    assert PENDING not in outcome["after_lookup"]  # the lookup wrote the rescored row back
    assert outcome["after_lookup"]["scores"]["clv_12m"] == pytest.approx(outcome["view"]["scores"]["clv_12m"])
    newcomer = outcome["newcomer"].json()
    assert newcomer["rescored"] is True and newcomer["scores"]["p_alive"] is not None


def test_the_order_updates_the_summary_by_hand(outcome: dict[str, Any]) -> None:
    before, response = outcome["before"], outcome["posted"]
    assert response.status_code == 201, response.text
    rfm = outcome["view"]["rfm"]
    first = pd.Timestamp(before["first_purchase_at"]).tz_convert("UTC").normalize()
    # new last day = observation end, in operational weeks of the customer's market
    weeks = float(outcome["clock"].operational_weeks(before["market"], first, "2026-02-10"))
    assert weeks != pytest.approx((pd.Timestamp("2026-02-10", tz="UTC") - first).days / 7, abs=1e-6)
    assert rfm["frequency"] == before["frequency"] + 1
    assert rfm["recency"] == pytest.approx(weeks, abs=1e-12) and rfm["T"] == pytest.approx(weeks, abs=1e-12)
    assert rfm["n_orders"] == before["n_orders"] + 1
    assert rfm["total_revenue"] == pytest.approx(before["total_revenue"] + 120.0, abs=1e-9)
    assert rfm["total_gp2"] == pytest.approx(before["total_gp2"] + 45.5, abs=1e-9)
    assert response.json()["observation_end"] == "2026-02-10"


def test_the_scores_equal_a_batch_rescore_of_the_same_data(outcome: dict[str, Any]) -> None:
    for rows in (outcome["view"], outcome["newcomer"].json()):  # rescored by a lookup, and at once
        live = rows["scores"]
        batch = outcome["batch"].loc[rows["customer_key"]]
        numeric = [c for c in batch.index if isinstance(batch[c], float) and c != "scored_at"]
        assert len(numeric) >= 20
        for column in numeric:
            assert live[column] == pytest.approx(batch[column], rel=1e-9, abs=1e-9), column
        assert live["expected_next_order_date"] == (None if pd.isna(batch["expected_next_order_date"])
                                                     else pd.Timestamp(batch["expected_next_order_date"]).date()
                                                     .isoformat())
        rfm = outcome["batch_rfm"].loc[rows["customer_key"]]
        for column in ("frequency", "recency", "T", "monetary_revenue", "total_gp2"):
            assert rows["rfm"][column] == pytest.approx(rfm[column], rel=1e-12), column


def test_a_new_customer_starts_with_one_order(outcome: dict[str, Any]) -> None:
    body = outcome["newcomer"].json()
    assert outcome["newcomer"].status_code == 201
    day = float(outcome["clock"].operational_weeks(POOLED, "2026-02-09", "2026-02-10"))  # no country: all markets
    assert (body["rfm"]["frequency"], body["rfm"]["recency"], body["rfm"]["market"]) == (0, 0.0, POOLED)
    assert body["rfm"]["T"] == pytest.approx(day, abs=1e-12)
    assert body["scores"]["p_alive"] == pytest.approx(1.0)  # BG/NBD: no repeat purchase, alive for sure


def test_the_order_is_persisted_and_shown(outcome: dict[str, Any]) -> None:
    assert outcome["again"].status_code == 409 and "recorded already" in outcome["again"].json()["detail"]
    events = outcome["events"].set_index("order_id")
    assert sorted(events.index) == ["API-0001", "API-0002"]  # each taken once by the batch, in log order
    assert events.loc["API-0001", "seq"] == 1 and events.loc["API-0002", "seq"] == 2
    assert events.loc["API-0001", "revenue"] == 120.0 and events.loc["API-0001", "customer_key"] == outcome["key"]
    assert events.loc["API-0001", "ordered_at"] == pd.Timestamp("2026-02-10T14:30:00Z")
    assert outcome["view"]["orders"][0]["order_id"] == "API-0001"


def test_a_batch_rebuild_keeps_the_posted_orders(outcome: dict[str, Any]) -> None:
    rebuilt = outcome["rebuilt"].set_index("order_id")
    assert sorted(rebuilt.index) == ["API-0001", "API-0002"]
    assert rebuilt.loc["API-0001", "gp2"] == 45.5 and rebuilt.loc["API-0001", "source"] == "api"
    row, batch = outcome["rebuilt_rfm"].loc[outcome["key"]], outcome["batch_rfm"].loc[outcome["key"]]
    assert row["frequency"] == batch["frequency"] and row["market"] == batch["market"]
    # the rebuild estimates the clock again from more months: the posted order is still the last purchase
    first = pd.Timestamp(row["first_purchase_at"]).tz_convert("UTC").normalize()
    weeks = float(outcome["rebuilt_clock"].operational_weeks(row["market"], first, "2026-02-10"))
    assert row["recency"] == pytest.approx(weeks, abs=1e-9) and row["T"] == pytest.approx(weeks, abs=1e-9)
