"""The web app under ``/app/``: pages for non-engineers, server-rendered, working without internet.

FastAPI routes render Jinja2 templates; the few scripts (``static/app.js``) and Plotly.js
(``plotly.min.js`` from the installed ``plotly`` package, never a CDN) are served by the app
itself. Login with an API key gives a signed session cookie (:mod:`.session`); each page
requires a permission of :mod:`patron.governance.security` (:mod:`.nav`). See docs/web.md.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse

from patron.errors import PatronError
from patron.service.web import audiences, customers, login
from patron.service.web.nav import PREFIX
from patron.service.web.session import SessionSigner, session_secret

STATIC_DIR = Path(__file__).parent / "static"
#: Where the page's own files and Plotly.js are served.
STATIC_PATH = f"{PREFIX}/static"
PLOTLY_PATH = f"{PREFIX}/vendor/plotly.min.js"


def plotly_js() -> Path:
    """``plotly.min.js`` of the installed ``plotly`` package (its ``package_data``); ImportError naming the extra."""
    try:
        path = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        raise ImportError("the web app's charts need the 'plotly' package: pip install 'patron[service]'") from None
    if not path.is_file():
        raise ImportError(f"the installed plotly package lacks {path}: reinstall it")
    return path


def mount_web(app: FastAPI, *, status_for: Callable[[PatronError], int]) -> None:
    """Add the web app to ``app`` (whose ``state.settings`` is set): its pages, its static files, the session signer.

    ``status_for`` maps a patron error to its HTTP status, as the API answers it.
    """
    settings = app.state.settings
    app.state.web_signer = SessionSigner(session_secret(settings.serving_dir))
    app.state.web_status_for = status_for
    plotly = plotly_js()
    app.add_api_route(PLOTLY_PATH, lambda: FileResponse(plotly, media_type="text/javascript",
                                                        headers={"Cache-Control": "public, max-age=86400"}),
                      include_in_schema=False)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="web-static")
    for module in (login, customers, audiences):
        app.include_router(module.router)
