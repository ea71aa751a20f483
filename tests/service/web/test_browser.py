"""The web app in a real browser (Debian's Chromium driven by Playwright) against a real server: each role logs
in and sees only its pages, charts are drawn with data points, forbidden pages answer 403, a stale or tampered
session goes back to login, forms without their token are refused, and no request leaves the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.governance.security import ROLES, Principal
from patron.service.web.nav import PAGES, visible_pages
from patron.service.web.session import SESSION_COOKIE, SessionSigner, WebSession, session_secret
from patron.serving.online import open_online_store
from patron.serving.reader import ServingReader, current_doc
from tests.service.conftest import Service
from tests.service.web.conftest import FAILURE_SHOTS

#: One screenshot per page and role lands here, to look at.
SHOTS = Path("/tmp/web_shots")


class Visitor:
    """A browser context logged in (or not) as one role, recording every request its pages make."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.console_errors: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        """Keep the page's errors (a CSP violation, a script error), but not a 403 page's own status."""
        if message.type == "error" and "status of 403" not in message.text:
            self.console_errors.append(message.text)

    def log_in(self, key: str, next_path: str = "/app/") -> None:
        self.page.goto(f"/app/login?next={next_path}")
        self.page.fill("#api_key", key)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.base_url + "/")]


@pytest.fixture
def visitor(browser: Any, base_url: str, request: pytest.FixtureRequest) -> Iterator[Visitor]:
    """A fresh visitor; a screenshot of its page in FAILURE_SHOTS when the test failed."""
    own = Visitor(browser, base_url)
    try:
        yield own
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            FAILURE_SHOTS.mkdir(parents=True, exist_ok=True)
            own.page.screenshot(path=str(FAILURE_SHOTS / f"{request.node.name}.png"), full_page=True)
        own.context.close()


def a_customer_with_orders(service: Service) -> tuple[str, str]:
    """A customer key with several orders and one of their e-mails, from the published version."""
    with open_online_store(service.settings) as store:
        reader = ServingReader(service.settings, store)
        try:
            version = reader.current()
            orders = version.warehouse.to_pandas(version.warehouse.table("orders").select("customer_key"))
            counts = orders.customer_key.value_counts()
            for key in sorted(counts[counts >= 3].index)[:50]:
                doc, _ = current_doc(store, version, str(key))
                emails = [r["email"] for r in (doc or {}).get("personal", []) if r.get("email")]
                if emails:
                    return str(key), emails[0]
        finally:
            reader.close()
    raise AssertionError("no customer with orders and an e-mail")


def test_each_role_sees_its_pages_and_only_those(visitor: Visitor, base_url: str, web_service: Service) -> None:
    for role in ROLES:  # one browser context (its cache of plotly.min.js shared), logged in as each role in turn
        visitor.context.clear_cookies()
        visitor.log_in(web_service.keys[role])
        allowed = visible_pages(Principal("x", role))
        assert visitor.page.url == base_url + allowed[0].path  # landed on the first page the role may open
        nav = visitor.page.locator("nav.nav a").all_inner_texts()
        assert nav == [p.title for p in allowed], role
        for page in PAGES:
            answer = visitor.page.goto(page.path)
            assert answer is not None
            if page in allowed:
                assert answer.status == 200, (role, page.path)
                visitor.page.wait_for_load_state("networkidle")
                visitor.shot(f"{role}_{page.name}")
            else:
                assert answer.status == 403, (role, page.path)
                assert "may not open this page" in visitor.page.inner_text("main")
                visitor.shot(f"{role}_{page.name}_403")
    assert visitor.requests and visitor.foreign_requests() == []
    assert visitor.console_errors == []


def test_the_customer_view_draws_the_orders_and_hides_personal_data_from_marketers(
        browser: Any, base_url: str, web_service: Service, visitor: Visitor) -> None:
    key, email = a_customer_with_orders(web_service)
    visitor.log_in(web_service.keys["store"], "/app/customers")
    visitor.page.fill("#q", email.upper())  # normalised as identity resolution does
    visitor.page.click("form.search button")
    visitor.page.wait_for_load_state("networkidle")
    visitor.shot("store_customers_search")
    visitor.page.click(f"#results a[href='/app/customers/{key}']")
    visitor.page.wait_for_selector("#orders-chart .main-svg")
    visitor.page.wait_for_load_state("networkidle")
    visitor.shot("store_customer_view")
    traces = visitor.page.evaluate("""() => document.getElementById('orders-chart').data.map(
        t => ({name: t.name, points: t.y.filter(v => v !== null).length}))""")
    orders = visitor.page.locator("#orders tbody tr").count()
    assert [t["name"] for t in traces] == ["Revenue", "GP2"]
    assert traces[0]["points"] == orders and orders >= 2
    assert visitor.page.locator("#orders-chart g.point").count() >= orders  # bars and markers drawn
    assert email.lower() in visitor.page.inner_text("#records").lower()  # store staff see personal data
    assert visitor.foreign_requests() == [] and visitor.console_errors == []

    marketer = Visitor(browser, base_url)
    try:
        marketer.log_in(web_service.keys["marketer"], f"/app/customers/{key}")
        marketer.page.wait_for_selector("#orders-chart .main-svg")
        html = marketer.page.content().lower()
        assert email.lower() not in html and "first_name" not in html  # neither shown nor in the chart's JSON
        assert marketer.page.locator("#records tbody tr").count() >= 1  # sources and match confidence still shown
        marketer.shot("marketer_customer_view")
    finally:
        marketer.context.close()


def test_the_audiences_chart_has_a_bar_per_audience(visitor: Visitor, web_service: Service) -> None:
    visitor.log_in(web_service.keys["marketer"], "/app/audiences")
    visitor.page.wait_for_selector("#audiences-chart .main-svg")
    traces = visitor.page.evaluate("""() => document.getElementById('audiences-chart').data.map(
        t => ({name: t.name, n: t.x.length, total: t.x.reduce((a, b) => a + b, 0)}))""")
    cards = visitor.page.locator("section.audience").count()
    assert [t["name"] for t in traces] == ["Members", "No consent"]
    assert all(t["n"] == cards for t in traces) and traces[0]["total"] > 0
    links = visitor.page.locator("section.audience").first.locator("a.button").all_inner_texts()
    assert links == ["google", "meta", "crm", "csv"]
    with visitor.page.expect_download() as download:
        visitor.page.locator("section.audience").nth(1).locator("a.button", has_text="crm").click()
    assert download.value.suggested_filename.endswith(".csv")
    assert visitor.foreign_requests() == []


def test_a_tampered_or_expired_session_goes_to_login(visitor: Visitor, web_service: Service, base_url: str) -> None:
    visitor.log_in(web_service.keys["analyst"], "/app/customers")
    cookie = next(c for c in visitor.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time() + 3600
    secret = session_secret(web_service.settings.serving_dir)
    session = SessionSigner(secret).read(cookie["value"])
    assert session is not None and session.role == "analyst"
    tampered = SessionSigner(secret).issue(WebSession(session.key_id, "admin", session.csrf))
    tampered = tampered.replace(tampered.split(".")[0], SessionSigner(secret).issue(session).split(".")[0])
    expired = SessionSigner(secret, clock=lambda: time.time() - 9 * 3600).issue(session)
    forged = SessionSigner("another secret of at least thirty-two characters").issue(session)
    for bad in (cookie["value"][:-3] + "AAA", tampered, expired, forged):
        visitor.context.add_cookies([{**cookie, "value": bad}])
        visitor.page.goto("/app/customers")
        assert visitor.page.url.startswith(base_url + "/app/login?next="), bad
        assert visitor.page.locator("#api_key").count() == 1


def test_forms_without_their_token_are_refused(visitor: Visitor, web_service: Service, base_url: str) -> None:
    visitor.page.goto("/app/login")
    visitor.shot("login")
    refused = visitor.page.request.post(f"{base_url}/app/login", form={"api_key": web_service.keys["admin"]},
                                        max_redirects=0)
    assert refused.status == 403 and "security token" in refused.text()
    visitor.log_in(web_service.keys["admin"], "/app/customers")
    refused = visitor.page.request.post(f"{base_url}/app/logout", form={"csrf_token": "forged"}, max_redirects=0)
    assert refused.status == 403
    assert visitor.page.goto("/app/customers").status == 200  # still logged in
    visitor.page.click("button:has-text('Log out')")
    visitor.page.wait_for_url("**/app/login")
    assert visitor.page.goto("/app/customers").url.startswith(base_url + "/app/login")
