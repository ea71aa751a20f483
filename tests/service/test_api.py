"""Every endpoint's permissions (401 / 403 / 2xx by role), personal data by role, bad input, a real server."""

from __future__ import annotations

import socket
import threading
import time
from itertools import count
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from patron.engine import connect
from patron.governance.security import ROLES, parse_key, revoke_key
from patron.service.app import create_app
from patron.service.routers.audiences import page
from patron.serving.online import open_online_store
from patron.transforms.seasonality import stored_seasonality
from tests.service.conftest import Service, make_service

_ORDER = count(1)

# Hand-written, not read from ROLE_PERMISSIONS, so that a change to the matrix fails here.
ALLOWED = {
    "health": {"admin", "analyst", "marketer", "store"},
    "customer": {"admin", "analyst", "marketer", "store"},
    "score": {"admin", "analyst"},
    "events": {"admin"},
    "audiences": {"admin", "analyst", "marketer"},
    "keys": {"admin"},
}


@pytest.fixture(scope="module")
def customer(service: Service) -> dict[str, Any]:
    """A repeat buyer with scores and a source record carrying an e-mail and a phone."""
    with connect(service.settings) as warehouse:
        rfm, identity, customers = (warehouse.table(n) for n in ("rfm", "identity_map", "customers"))
        known = identity.join(customers.filter(customers.email.notnull(), customers.phone.notnull()),
                              ["source", "customer_id"])
        chosen = rfm.filter(rfm.frequency > 1).join(known, "customer_key").order_by("customer_key").limit(1)
        return warehouse.to_pandas(chosen.select("customer_key", "email", "phone", "last_name")).iloc[0].to_dict()


def call(client: TestClient, endpoint: str, customer: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    if endpoint == "health":
        return client.get("/health", headers=headers)
    if endpoint == "customer":
        return client.get(f"/customers/{customer['customer_key']}", headers=headers)
    if endpoint == "score":
        body = {"summary": {"frequency": 2, "recency": 30.0, "T": 50.0, "monetary_revenue": 60.0}}
        return client.post("/score", json=body, headers=headers)
    if endpoint == "events":
        body = {"order_id": f"MATRIX-{next(_ORDER)}", "customer_key": customer["customer_key"],
                "ordered_at": "2025-06-01T12:00:00Z", "revenue": 20.0, "gp2": 8.0}
        return client.post("/events", json=body, headers=headers)
    if endpoint == "keys":
        return client.get("/keys", headers=headers)
    return client.get("/audiences/no_such_audience", headers=headers)


@pytest.mark.parametrize("endpoint", list(ALLOWED))
def test_without_a_valid_key_every_endpoint_answers_401(
    endpoint: str, client: TestClient, service: Service, customer: dict[str, Any]
) -> None:
    key_id, secret = parse_key(service.keys["admin"])
    for headers in ({}, {"X-API-Key": "not-a-key"}, {"X-API-Key": f"ptk_{'0' * 12}_{secret}"},
                    {"X-API-Key": f"ptk_{key_id}_{'x' * 43}"}):
        response = call(client, endpoint, customer, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "X-API-Key"
        assert "API key" in response.json()["detail"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ALLOWED))
def test_each_role_gets_exactly_its_endpoints(
    endpoint: str, role: str, client: TestClient, service: Service, customer: dict[str, Any]
) -> None:
    response = call(client, endpoint, customer, service.headers(role))
    if role not in ALLOWED[endpoint]:
        assert response.status_code == 403, response.text
        assert role in response.json()["detail"]
    elif endpoint == "audiences":  # past the role check: no audience has that name
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == "unknown audience 'no_such_audience'"
    else:
        assert response.status_code == (201 if endpoint == "events" else 200), response.text


def test_a_revoked_key_is_refused(scored_project: Any, tmp_path: Any) -> None:
    own = make_service(scored_project, tmp_path / "revoked")
    with open_online_store(own.settings) as store:
        revoke_key(store, parse_key(own.keys["analyst"])[0])
    with TestClient(create_app(own.settings)) as client:
        assert client.get("/health", headers=own.headers("analyst")).status_code == 401
        assert client.get("/health", headers=own.headers("marketer")).status_code == 200


def test_personal_data_reach_store_staff_but_never_marketers(
    client: TestClient, service: Service, customer: dict[str, Any]
) -> None:
    path = f"/customers/{customer['customer_key']}"
    store = client.get(path, headers=service.headers("store")).json()
    assert customer["email"] in [r["email"] for r in store["personal"]]
    for role in ("marketer", "analyst"):
        response = client.get(path, headers=service.headers(role))
        assert response.status_code == 200
        body = response.json()
        assert body.get("personal") is None
        for value in (customer["email"], customer["phone"], customer["last_name"]):
            assert value not in response.text
        assert body["tier"] in {"top_1", "top_1_5", "top_5_10", "top_10_25", "top_25_50", "bottom_50"}


def test_a_customer_view_holds_scores_tier_and_orders_across_channels(
    client: TestClient, service: Service, customer: dict[str, Any]
) -> None:
    body = client.get(f"/customers/{customer['customer_key']}", headers=service.headers("admin")).json()
    assert body["customer_key"] == customer["customer_key"]
    assert body["rfm"]["frequency"] >= 2 and 0.0 <= body["scores"]["p_alive"] <= 1.0
    assert body["scores"]["clv_36m_lower"] <= body["scores"]["clv_36m"] <= body["scores"]["clv_36m_upper"]
    assert sum(c["orders"] for c in body["channels"]) == len(body["orders"]) >= body["rfm"]["n_orders"]
    times = [o["ordered_at"] for o in body["orders"]]
    assert times == sorted(times, reverse=True)


def test_tier_and_segments_come_from_the_segments_table(client: TestClient, service: Service) -> None:
    """The view shows the customer's row of ``segments``: the most valuable is top_1, the least bottom_50."""
    with connect(service.settings) as warehouse:
        segments = warehouse.to_pandas(warehouse.table("segments"))
        scores = warehouse.to_pandas(warehouse.table("scores").select("customer_key", "clv_36m"))
    ranked = scores.sort_values("clv_36m", ascending=False)["customer_key"].tolist()
    views = [client.get(f"/customers/{k}", headers=service.headers("marketer")).json() for k in (ranked[0], ranked[-1])]
    assert [v["tier"] for v in views] == ["top_1", "bottom_50"]
    row = segments.set_index("customer_key").loc[ranked[0]]
    assert views[0]["segments"] == [row["value_tier"], row["rfm_segment"], row["lifecycle_stage"], row["strategy_cell"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("get", "/customers/NOSUCHKEY", None, 404, "unknown customer"),
        ("get", "/customers/bad key!", None, 422, "path.key"),
        ("post", "/events", {"order_id": "N1", "customer_key": "C1", "ordered_at": "2025-01-01T00:00:00Z",
                             "revenue": -5.0, "gp2": -6.0}, 422, "body.revenue"),
        ("post", "/events", {"order_id": "N2", "customer_key": "C1", "ordered_at": "2025-01-01T00:00:00",
                             "revenue": 5.0, "gp2": 1.0}, 422, "timezone"),
        ("post", "/events", {"order_id": "N3", "customer_key": "C1", "ordered_at": "2025-01-01T00:00:00Z",
                             "revenue": 5.0, "gp2": 9.0}, 422, "gp2 cannot exceed revenue"),
        ("post", "/score", {"summary": {"frequency": 0, "recency": 3.0, "T": 10.0}}, 422, "recency 0"),
        ("post", "/score", {"summary": {"frequency": 1, "recency": 3.0, "T": 1.0}}, 422, "recency cannot exceed T"),
        ("post", "/score", {}, 422, "exactly one of"),
        ("post", "/score", {"orders": [{"ordered_at": "2024-01-01T00:00:00Z", "revenue": 1.0}],
                            "observation_end": "2020-01-01"}, 422, "no posted order"),
        ("post", "/score", {"orders": [{"ordered_at": "2099-01-01T00:00:00Z", "revenue": 1.0}]}, 422,
         "orders[0].ordered_at: 2099-01-01"),
        ("post", "/events", {"order_id": "F1", "customer_key": "C1", "ordered_at": "2099-01-01T00:00:00Z",
                             "revenue": 1.0, "gp2": 0.5}, 422, "ordered_at: 2099-01-01"),
        ("get", "/audiences/x?limit=0", None, 422, "query.limit"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    method: str, path: str, body: Any, status: int, words: str, client: TestClient, service: Service
) -> None:
    extra = {"json": body} if body is not None else {}
    response = getattr(client, method)(path, headers=service.headers("admin"), **extra)
    assert response.status_code == status, response.text
    assert words in response.text


def test_malformed_json_gets_422_with_a_message(client: TestClient, service: Service) -> None:
    headers = {**service.headers("admin"), "Content-Type": "application/json"}
    response = client.post("/events", content=b'{"order_id": "x", ', headers=headers)
    assert response.status_code == 422
    assert "JSON decode error" in response.json()["message"]


def test_score_a_history_equals_scoring_its_summary(client: TestClient, service: Service) -> None:
    """Two orders 14 days apart, observed to 70 days after the first, in Germany.

    The batch summarised on a seasonal clock, so the history is measured in Germany's
    operational weeks; the returned summary, posted back, scores the same.
    """
    headers = service.headers("analyst")
    orders = [{"ordered_at": "2024-01-01T09:00:00Z", "revenue": 40.0, "gp2": 10.0},
              {"ordered_at": "2024-01-15T18:00:00+02:00", "revenue": 60.0, "gp2": 30.0}]
    with connect(service.settings) as warehouse:
        clock = stored_seasonality(warehouse)
    assert clock is not None and not clock.is_flat
    history = client.post("/score", json={"orders": orders, "observation_end": "2024-03-11", "market": "DE"},
                          headers=headers).json()
    summary = history["summary"]
    assert summary["frequency"] == 1
    assert summary["recency"] == pytest.approx(float(clock.operational_weeks("DE", "2024-01-01", "2024-01-15")))
    assert summary["T"] == pytest.approx(float(clock.operational_weeks("DE", "2024-01-01", "2024-03-11")))
    assert summary["T"] != pytest.approx(10.0, abs=1e-3)  # not calendar weeks
    posted = {k: summary[k] for k in ("frequency", "recency", "T", "monetary_revenue", "total_revenue", "total_gp2")}
    direct = client.post("/score", json={"summary": posted, "observation_end": "2024-03-11", "market": "DE"},
                         headers=headers).json()
    assert history["scores"]["expected_next_order_date"] == direct["scores"]["expected_next_order_date"]
    for name in ("p_alive", "expected_orders_12m", "clv_12m", "expected_margin"):
        assert history["scores"][name] == pytest.approx(direct["scores"][name], rel=1e-12)


def test_score_a_customers_own_history_gives_their_batch_scores(client: TestClient, service: Service) -> None:
    """A repeat buyer's orders, posted with their market and discounts, score as the batch scored them."""
    with connect(service.settings) as warehouse:
        rfm = warehouse.table("rfm")
        row = warehouse.to_pandas(rfm.filter(rfm.frequency >= 2).order_by("customer_key").limit(1)).iloc[0]
        values = warehouse.table("order_values")
        orders = warehouse.to_pandas(values.filter(values.customer_key == row["customer_key"]))
        scores = warehouse.table("scores")
        batch = warehouse.to_pandas(scores.filter(scores.customer_key == row["customer_key"])).iloc[0]
    posted = [{"ordered_at": pd.Timestamp(o.ordered_at).isoformat(), "revenue": float(o.revenue), "gp2": float(o.gp2),
               "discount": float(o.discount), "gross_revenue": float(o.gross_revenue)} for o in orders.itertuples()]
    body = client.post("/score", json={"orders": posted, "market": row["market"]},
                       headers=service.headers("analyst")).json()
    for column in ("frequency", "recency", "T"):
        assert body["summary"][column] == pytest.approx(row[column], rel=1e-12), column
    for column in ("p_alive", "expected_orders_12m", "expected_orders_36m", "clv_12m", "churn_risk"):
        assert body["scores"][column] == pytest.approx(batch[column], rel=1e-9), column


def test_paging_returns_disjoint_pages_in_key_order(client: TestClient, service: Service) -> None:
    with connect(service.settings) as warehouse:
        warehouse.write("test_members", pd.DataFrame({"customer_key": [f"K{i:03d}" for i in range(25)]}))
        members = warehouse.table("test_members")
        pages = [page(warehouse, members, limit=10, offset=o) for o in (0, 10, 20, 30)]
    assert [total for total, _ in pages] == [25] * 4
    assert [len(keys) for _, keys in pages] == [10, 10, 5, 0]
    assert [k for _, keys in pages for k in keys] == [f"K{i:03d}" for i in range(25)]


def test_the_real_server_answers_over_http(scored_project: Any, tmp_path: Any, customer: dict[str, Any]) -> None:
    own = make_service(scored_project, tmp_path / "http")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(own.settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/health", headers=own.headers("store"), timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["customers"] > 500
        found = httpx.get(f"{base}/customers/{customer['customer_key']}", headers=own.headers("store"), timeout=10)
        assert found.status_code == 200 and found.json()["customer_key"] == customer["customer_key"]
        assert httpx.get(f"{base}/customers/{customer['customer_key']}", timeout=10).status_code == 401
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_admins_create_and_revoke_keys_while_the_service_runs(scored_project: Any, tmp_path: Any) -> None:
    own = make_service(scored_project, tmp_path / "keys")
    with TestClient(create_app(own.settings)) as client:
        admin = own.headers("admin")
        assert client.get("/health", headers=admin).status_code == 200  # the key cache is loaded now
        created = client.post("/keys", json={"role": "store"}, headers=admin)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["role"] == "store" and body["revoked"] is False and body["key"].startswith(f"ptk_{body['key_id']}_")
        new = {"X-API-Key": body["key"]}
        assert client.get("/health", headers=new).status_code == 200  # at once, not after the cache's 5 s
        assert client.get("/keys", headers=new).status_code == 403
        listed = {k["key_id"]: k for k in client.get("/keys", headers=admin).json()}
        assert listed[body["key_id"]]["role"] == "store" and "key" not in listed[body["key_id"]]
        assert all("hash" not in field for k in listed.values() for field in k)
        revoked = client.delete(f"/keys/{body['key_id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        assert client.get("/health", headers=new).status_code == 401
        assert client.delete("/keys/0123456789ab", headers=admin).status_code == 404
        assert client.delete("/keys/not-a-key-id", headers=admin).status_code == 422
        assert client.post("/keys", json={"role": "owner"}, headers=admin).status_code == 422


def test_a_summary_may_name_its_monetary_value_monetary_value(client: TestClient, service: Service) -> None:
    """``monetary_value`` (the spend model's name for the mean revenue of the repeat days) scores as
    ``monetary_revenue``; shown here on a history whose GP2 is its revenue, where the two columns of the returned
    summary agree."""
    headers = service.headers("analyst")
    orders = [{"ordered_at": f"2024-0{m}-10T12:00:00Z", "revenue": r} for m, r in ((1, 30.0), (3, 50.0), (5, 70.0))]
    history = client.post("/score", json={"orders": orders, "observation_end": "2024-08-01"}, headers=headers).json()
    summary = history["summary"]
    assert summary["frequency"] == 2
    assert summary["monetary_value"] == summary["monetary_revenue"] == pytest.approx(60.0)
    base = {k: summary[k] for k in ("frequency", "recency", "T", "total_revenue", "total_gp2")}
    by_name = {name: client.post("/score", json={"summary": {**base, name: summary[name]},
                                                 "observation_end": "2024-08-01"}, headers=headers)
               for name in ("monetary_value", "monetary_revenue")}
    assert [r.status_code for r in by_name.values()] == [200, 200], [r.text for r in by_name.values()]
    by_value, by_revenue = (r.json() for r in by_name.values())
    assert by_value["summary"] == by_revenue["summary"]
    assert by_value["summary"]["monetary_revenue"] == pytest.approx(60.0)
    for name in ("p_alive", "expected_revenue_per_order", "expected_margin", "clv_12m", "clv_36m_upper"):
        assert by_value["scores"][name] == pytest.approx(by_revenue["scores"][name], rel=1e-9), name
        assert by_value["scores"][name] == pytest.approx(history["scores"][name], rel=1e-9), name
    both = client.post("/score", json={"summary": {**base, "monetary_value": 60.0, "monetary_revenue": 60.0}},
                       headers=headers)
    assert both.status_code == 422 and "not both" in both.json()["message"]


@pytest.mark.parametrize(("summary", "words"), [
    ({"frequency": 3, "recency": 0.0, "T": 20.0}, "a repeat purchase day lies after the first"),
    ({"frequency": 2, "recency": 5.0, "T": 20.0, "monetary_value": None}, "may be left out but not null"),
    ({"frequency": "2", "recency": 5.0, "T": 20.0}, "body.summary.frequency"),
    ({"frequency": 2, "recency": 5.0, "T": 20.0, "monetary_revenue": "60"}, "body.summary.monetary_revenue"),
])
def test_an_impossible_summary_gets_422(
    summary: dict[str, Any], words: str, client: TestClient, service: Service
) -> None:
    response = client.post("/score", json={"summary": summary}, headers=service.headers("analyst"))
    assert response.status_code == 422, response.text
    assert words in response.json()["message"]


def test_a_body_over_the_limit_gets_413(client: TestClient, service: Service) -> None:
    body = b'{"summary": {"frequency": 1, "recency": 1.0, "T": 2.0}, "pad": "' + b"x" * 2_000_000 + b'"}'
    response = client.post("/score", content=body, headers={**service.headers("analyst"),
                                                               "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "request body too large" in response.json()["detail"]


def test_no_key_and_malformed_json_gets_401_not_422(client: TestClient) -> None:
    response = client.post("/events", content=b'{"order_id": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "X-API-Key"


def test_a_method_a_path_does_not_take_gets_405_naming_those_it_takes(client: TestClient, service: Service) -> None:
    for method in ("PUT", "PATCH", "OPTIONS"):
        response = client.request(method, "/keys", headers=service.headers("admin"))
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"


def test_the_openapi_document_names_every_refusal(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "403", "413", "429"} <= codes, (method, path, codes)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
            if path not in ("/keys", "/keys/{key_id}"):  # the keys live in the online store, not the version
                assert "503" in codes, (method, path)
    assert "404" in document["paths"]["/customers/{key}"]["get"]["responses"]
    assert "409" in document["paths"]["/events"]["post"]["responses"]
    summary = document["components"]["schemas"]["Summary"]
    assert "monetary_value" in summary["properties"] and "GP2" in summary["properties"]["monetary_value"]["description"]
