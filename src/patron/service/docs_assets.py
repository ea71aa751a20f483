"""The API docs (Swagger UI) served from an installed package, so that ``/docs`` works without the internet.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN: behind a firewall, or on a laptop offline, it stays
blank. :func:`mount_docs` serves the same page with Swagger UI's files taken from the ``fastapi-offline``
package (MIT; its ``static/`` folder ships ``swagger-ui-bundle.js``, ``swagger-ui.css`` and a favicon from
Swagger UI 5, which reads the OpenAPI 3.1 documents FastAPI writes). Only those files are used, not the package's
code. The app must be created with ``docs_url=None, redoc_url=None``.

Each URL on the page is prefixed with the request's ``root_path``, so the page also works behind a proxy that
mounts the service under a path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

#: Where the docs page is served.
DOCS_PATH = "/docs"
#: Where Swagger UI's files are served.
ASSETS_PATH = "/docs/assets"
#: The package shipping Swagger UI's files, and the folder holding them in it.
ASSETS_PACKAGE = "fastapi_offline"
_ASSETS_FOLDER = "static"
_JS, _CSS, _FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"


def assets_dir() -> Path:
    """The folder of Swagger UI's files in the installed package; ImportError naming the extra when it is absent."""
    try:
        folder = files(ASSETS_PACKAGE) / _ASSETS_FOLDER
    except ModuleNotFoundError:
        raise ImportError("the API docs need the 'fastapi-offline' package: pip install 'patron[service]'") from None
    directory = Path(str(folder))  # an installed wheel is a folder on disk, which StaticFiles needs
    missing = [name for name in (_JS, _CSS, _FAVICON) if not (directory / name).is_file()]
    if missing:
        raise ImportError(f"{ASSETS_PACKAGE} at {directory} lacks {', '.join(missing)}: reinstall it")
    return directory


def mount_docs(app: FastAPI, *, title: str) -> None:
    """Serve Swagger UI at ``/docs`` and its files under ``/docs/assets``, all from the installed package.

    Parameters
    ----------
    app
        A FastAPI app created with ``docs_url=None, redoc_url=None`` and an ``openapi_url`` (the default
        ``/openapi.json`` will do).
    title
        The page's title, shown in the browser tab.

    Raises
    ------
    ValueError
        When the app still serves FastAPI's own docs page (it would answer ``/docs`` first) or has no OpenAPI
        document to show.
    """
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with docs_url=None, redoc_url=None: its own docs pages load from a CDN")
    if app.openapi_url is None:
        raise ValueError("the app has no openapi_url: there is no OpenAPI document for the docs page to show")
    openapi_url = app.openapi_url
    # Swagger UI's default validatorUrl would send the document's address to validator.swagger.io.
    parameters = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=title,
            swagger_js_url=f"{root}{ASSETS_PATH}/{_JS}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{_FAVICON}",
            swagger_ui_parameters=parameters,
        )

    app.add_api_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False, name="docs")
