"""Time guards: no order or event from the future is taken in, and the observation end never passes today."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from patron import pipeline
from patron.config import ModelSettings, Settings
from patron.engine import connect
from patron.errors import Unprocessable
from patron.scoring.live import refuse_future
from patron.service.app import create_app
from patron.serving.online import open_online_store
from patron.transforms.observation import not_after_today, observation_end
from tests.service.conftest import Service, make_service

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_refuse_future_names_the_field_and_keeps_the_tolerance() -> None:
    settings = Settings()
    refuse_future(NOW + dt.timedelta(hours=23), settings, "ordered_at", now=NOW)  # within the day of tolerance
    refuse_future(dt.date(2026, 3, 2), settings, "observation_end", now=NOW)
    with pytest.raises(Unprocessable, match=r"^ordered_at: 2031-01-01T00:00:00\+00:00 lies more than 1 day"):
        refuse_future(dt.datetime(2031, 1, 1, tzinfo=dt.UTC), settings, "ordered_at", now=NOW)
    with pytest.raises(Unprocessable, match=r"^observation_end: 2026-03-03"):
        refuse_future(dt.date(2026, 3, 3), settings, "observation_end", now=NOW)
    assert not_after_today(dt.date(2031, 1, 1), now=NOW) == dt.date(2026, 3, 1)
    assert not_after_today(dt.date(2025, 1, 1), now=NOW) == dt.date(2025, 1, 1)


def test_the_batch_observation_end_stops_at_today(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    times = ["2026-01-05T00:00", "2026-02-27T23:00", "2031-01-01T00:00"]
    orders = pd.DataFrame({"ordered_at": pd.to_datetime(times, utc=True)})
    reporter = pipeline.Reporter()
    with connect(settings) as wh:
        table = ibis.memtable(orders)
        assert observation_end(wh, settings, orders=table, note=reporter.note, now=NOW) == dt.date(2026, 3, 1)
        assert observation_end(wh, settings, orders=table.limit(2), now=NOW) == dt.date(2026, 2, 27)
        configured = Settings(project_dir=tmp_path, model=ModelSettings(observation_end="2030-06-30"))
        assert observation_end(wh, configured, orders=table, note=reporter.note, now=NOW) == dt.date(2026, 3, 1)
    assert any("1 order(s) are dated after today (the last on 2031-01-01)" in n for n in reporter.notes)
    assert any("observation_end 2030-06-30 lies in the future" in n for n in reporter.notes)


@pytest.fixture(scope="module")
def guarded(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Service:
    return make_service(scored_project, tmp_path_factory.mktemp("time_guards"))


def test_events_from_the_future_are_refused(guarded: Service) -> None:
    headers = guarded.headers("admin")
    with TestClient(create_app(guarded.settings)) as client:
        with connect(guarded.settings) as warehouse:
            key = str(warehouse.to_pandas(warehouse.table("rfm").limit(1)).customer_key.iloc[0])
        end_before = client.app.state.service.version().observation_end
        refused = client.post("/events", headers=headers, json={
            "order_id": "FUT-1", "customer_key": key, "ordered_at": "2031-01-01T00:00:00Z", "revenue": 10.0,
            "gp2": 4.0})
        assert refused.status_code == 422 and refused.json()["detail"].startswith("ordered_at: 2031-01-01")
        assert client.app.state.service.version().observation_end == end_before
        scored = client.post("/score", headers=headers, json={"orders": [
            {"ordered_at": "2025-01-01T00:00:00Z", "revenue": 10.0},
            {"ordered_at": "2031-01-01T00:00:00Z", "revenue": 10.0}]})
        assert scored.status_code == 422 and scored.json()["detail"].startswith("orders[1].ordered_at")
        late_end = client.post("/score", headers=headers, json={
            "summary": {"frequency": 1, "recency": 2.0, "T": 5.0, "monetary_revenue": 10.0},
            "observation_end": "2031-01-01"})
        assert late_end.status_code == 422 and late_end.json()["detail"].startswith("observation_end")
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)).isoformat()
        accepted = client.post("/events", headers=headers, json={
            "order_id": "SOON-1", "customer_key": key, "ordered_at": soon, "revenue": 10.0, "gp2": 4.0})
        assert accepted.status_code == 201, accepted.text
        assert dt.date.fromisoformat(accepted.json()["observation_end"]) <= dt.datetime.now(dt.UTC).date()
    with open_online_store(guarded.settings) as store:
        assert not store.has_event("FUT-1") and store.has_event("SOON-1")
