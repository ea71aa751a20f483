"""A published copy of the scored retailer with a key per role, served by a real uvicorn server, and one Chromium.

Chromium is Debian's (``make test`` installs the ``chromium`` package when missing); Playwright's own browser
download is not used. A test that fails leaves a screenshot of its page in :data:`FAILURE_SHOTS`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from patron.service.app import create_app
from tests.service.conftest import Service, make_service

#: Where a failed browser test leaves a screenshot of its page.
FAILURE_SHOTS = Path(os.environ.get("PATRON_WEB_FAILURE_SHOTS", Path(tempfile.gettempdir()) / "patron_web_failures"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="package")
def web_service(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """The scored retailer published on the embedded online store, a key per role."""
    return make_service(scored_project, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="package")
def base_url(web_service: Service) -> Iterator[str]:
    """A real uvicorn server of the app on a free loopback port, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(web_service.settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Debian Chromium for the module."""
    from playwright import sync_api  # a dev dependency: missing, the test fails (never skips)

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run `make test` (scripts/system-packages.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so that a fixture can tell the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
