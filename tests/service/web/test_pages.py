"""The web app's rules over plain HTTP: login and its token, the cookie's flags, the session's checks, the role of
each page, personal data only where the API shows it, the audience files, a new order shown at once."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from io import StringIO

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from patron.activation.audiences import audience_counts, list_audiences
from patron.config import EXPORT_FORMATS
from patron.governance.security import ROLES, Principal, create_key, parse_key, revoke_key
from patron.service.app import create_app
from patron.service.web.audiences import sizes_by_market
from patron.service.web.nav import PAGES, home_path, visible_pages
from patron.service.web.session import SECRET_FILE, SESSION_COOKIE
from patron.serving.online import open_online_store
from patron.serving.reader import ServingReader, current_doc
from tests.service.conftest import Service

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app_client(web_service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(web_service.settings), follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, key: str, next_path: str = "/app/") -> TestClient:
    """``client`` logged in with ``key`` through the form (its cookies replaced)."""
    client.cookies.clear()
    token = TOKEN.search(client.get("/app/login").text)
    assert token is not None
    answer = client.post("/app/login", data={"api_key": key, "csrf_token": token.group(1), "next": next_path})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: TestClient, path: str = "/app/customers") -> str:
    token = TOKEN.search(client.get(path).text)
    assert token is not None
    return token.group(1)


def some_customer(service: Service) -> tuple[str, dict]:
    """A customer with an e-mail in their records, and their published document."""
    with open_online_store(service.settings) as store:
        reader = ServingReader(service.settings, store)
        try:
            version = reader.current()
            keys = version.warehouse.to_pandas(version.warehouse.table("scores").select("customer_key")
                                               .order_by("customer_key").limit(200)).customer_key
            for key in keys:
                doc, _ = current_doc(store, version, str(key))
                if doc and any(r.get("email") for r in doc.get("personal", [])) and doc.get("orders"):
                    return str(key), doc
        finally:
            reader.close()
    raise AssertionError("no customer with an e-mail")


def test_the_role_matrix_of_the_pages() -> None:
    pages = {role: [p.name for p in visible_pages(Principal("k", role))] for role in ROLES}
    assert pages == {"admin": ["customers", "audiences"], "analyst": ["customers", "audiences"],
                     "marketer": ["customers", "audiences"], "store": ["customers"]}
    assert home_path(Principal("k", "store")) == "/app/customers"
    assert home_path(Principal("k", "nobody")) is None


def test_login_needs_its_token_and_a_valid_key(app_client: TestClient, web_service: Service) -> None:
    app_client.cookies.clear()
    assert app_client.get("/app/customers").headers["location"] == "/app/login?next=%2Fapp%2Fcustomers"
    page = app_client.get("/app/login")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    no_token = app_client.post("/app/login", data={"api_key": web_service.keys["admin"]})
    assert no_token.status_code == 403 and SESSION_COOKIE not in no_token.cookies
    wrong_token = app_client.post("/app/login", data={"api_key": web_service.keys["admin"], "csrf_token": "x" * 43})
    assert wrong_token.status_code == 403
    bad_key = app_client.post("/app/login", data={"api_key": "ptk_000000000000_" + "a" * 43, "csrf_token": token})
    assert bad_key.status_code == 401 and "not valid" in bad_key.text
    # another site cannot send the user on after login
    token = TOKEN.search(app_client.get("/app/login").text).group(1)  # type: ignore[union-attr]
    answer = app_client.post("/app/login", data={"api_key": web_service.keys["store"], "csrf_token": token,
                                                 "next": "//evil.example/app/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie and "Path=/app" in cookie
    assert "Secure" not in cookie  # plain http here; https adds it


def test_the_secret_is_kept_private_in_the_serving_folder(web_service: Service) -> None:
    path = web_service.settings.serving_dir / SECRET_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_role_gets_its_pages_and_403_for_the_others(app_client: TestClient, web_service: Service) -> None:
    for role in ROLES:
        log_in(app_client, web_service.keys[role])
        allowed = {p.name for p in visible_pages(Principal("k", role))}
        for page in PAGES:
            answer = app_client.get(page.path)
            assert answer.status_code == (200 if page.name in allowed else 403), (role, page.path)
        assert app_client.get("/app/").headers["location"] == home_path(Principal("k", role))


def test_a_revoked_key_ends_its_sessions(app_client: TestClient, web_service: Service) -> None:
    keys = app_client.app.state.service.keys  # type: ignore[attr-defined]
    with open_online_store(web_service.settings) as store:
        key = create_key(store, "store")
        keys.invalidate()  # as `patron keys create` is seen within the cache's few seconds
        log_in(app_client, key)
        assert app_client.get("/app/customers").status_code == 200
        revoke_key(store, parse_key(key)[0])
    keys.invalidate()
    assert app_client.get("/app/customers").headers["location"].startswith("/app/login")


def test_logout_is_a_post_with_the_token(app_client: TestClient, web_service: Service) -> None:
    log_in(app_client, web_service.keys["analyst"])
    assert app_client.get("/app/logout").status_code == 405
    assert app_client.post("/app/logout").status_code == 403
    assert app_client.get("/app/customers").status_code == 200
    answer = app_client.post("/app/logout", data={"csrf_token": csrf_of(app_client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/login"
    assert app_client.get("/app/customers").status_code == 303


def test_personal_data_only_for_roles_that_may_see_them(app_client: TestClient, web_service: Service) -> None:
    key, doc = some_customer(web_service)
    email = next(r["email"] for r in doc["personal"] if r.get("email"))
    log_in(app_client, web_service.keys["store"])
    store_view = app_client.get(f"/app/customers/{key}")
    assert store_view.status_code == 200 and email in store_view.text
    found = app_client.get("/app/customers", params={"q": f"  {email.upper()} "})
    assert f"/app/customers/{key}" in found.text
    record = next(r for r in doc["personal"] if r.get("first_name") and r.get("last_name"))
    by_name = app_client.get("/app/customers", params={"q": f"{record['last_name'].lower()} {record['first_name']}"})
    assert f"/app/customers/{key}" in by_name.text
    for role in ("marketer", "analyst"):
        log_in(app_client, web_service.keys[role])
        view = app_client.get(f"/app/customers/{key}")
        assert view.status_code == 200 and email not in view.text
        assert "CLV" in view.text and "Resolved records" in view.text
    assert app_client.get("/app/customers/C0000000000000000").status_code == 404


def test_a_new_order_shows_on_the_customer_page_at_once(app_client: TestClient, web_service: Service) -> None:
    key, doc = some_customer(web_service)
    before = len(doc["orders"])
    event = {"order_id": "WEB-TEST-1", "customer_key": key, "ordered_at": "2025-12-29T10:00:00Z",
             "revenue": 1234.5, "gp2": 600.0}
    assert app_client.post("/events", json=event, headers=web_service.headers("admin")).status_code == 201
    log_in(app_client, web_service.keys["analyst"])
    page = app_client.get(f"/app/customers/{key}").text
    assert "WEB-TEST-1" in page and "1,234.50" in page
    assert f"latest {before + 1} of {before + 1}" in page


def test_audience_files_in_every_format(app_client: TestClient, web_service: Service) -> None:
    log_in(app_client, web_service.keys["marketer"])
    page = app_client.get("/app/audiences").text
    name = "discount_suppression"
    members = int(re.search(rf'id="audience-{name}".*?kpi-value">([\d,]+)<', page, re.S).group(1).replace(",", ""))
    headers = {"google": "Email", "meta": "email", "crm": "customer_key", "csv": "customer_key"}
    for fmt in EXPORT_FORMATS:
        answer = app_client.get(f"/app/audiences/{name}/export", params={"format": fmt})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        frame = pd.read_csv(StringIO(answer.text))
        assert frame.columns[0] == headers[fmt]
        assert len(frame) == members if fmt in ("crm", "csv") else 0 < len(frame) <= members
    assert app_client.get(f"/app/audiences/{name}/export", params={"format": "xml"}).status_code == 422
    assert app_client.get("/app/audiences/nope/export").status_code == 404
    log_in(app_client, web_service.keys["store"])
    assert app_client.get(f"/app/audiences/{name}/export").status_code == 403


def test_audience_sizes_per_market_agree_with_the_audience_counts(web_service: Service) -> None:
    with open_online_store(web_service.settings) as store:
        reader = ServingReader(web_service.settings, store)
        try:
            warehouse = reader.current().warehouse
            audiences = list_audiences(web_service.settings)
            sizes = sizes_by_market(warehouse, web_service.settings, audiences)
            assert list(sizes) == [a.name for a in audiences]
            for audience in audiences:
                counts = audience_counts(warehouse, web_service.settings, audience.name)
                rows = sizes[audience.name]
                assert sum(r["matched"] for r in rows) == counts.matched
                assert sum(r["members"] for r in rows) == counts.members
                assert sum(r["excluded_no_consent"] for r in rows) == counts.excluded_no_consent
            assert any(rows for rows in sizes.values())
        finally:
            reader.close()
