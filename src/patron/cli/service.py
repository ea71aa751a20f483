"""Commands of the scoring service: serve, and the ``keys`` group (create, list, revoke)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, err_console, errors, fail, progress_reporter, project_dir
from patron.cli.render import keys_table
from patron.config import load_settings

__all__ = ["keys_app", "keys_create", "keys_list", "keys_revoke", "publish", "serve"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (default [serve] workers); behind a reverse proxy, one per core.", min=1)] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Run the API (OpenAPI docs at /docs) on the published serving layer; requests need an X-API-Key header.

    It never opens the warehouse: batch commands and `patron run` work while it serves, and
    each `patron publish` is picked up within seconds.
    """
    with errors():
        settings = load_settings(project_dir(project))
        try:
            import uvicorn

            from patron.service.app import APP_FACTORY, PROJECT_ENV, WORKERS_ENV
        except ImportError:
            raise fail("the service needs the 'service' extra: pip install 'patron[service]'") from None
        count = workers or settings.serve.workers
        os.environ[PROJECT_ENV] = str(settings.project_dir)
        os.environ[WORKERS_ENV] = str(count)
        err_console.print(f"Serving {settings.serving_dir} on http://{host}:{port} with {count} worker(s); "
                          f"docs at http://{host}:{port}/docs")
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=count, log_level="warning")


def publish(
    keep: Annotated[int | None, typer.Option(help="Serving versions to keep (default [serve] keep).", min=1)] = None,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Publish a new serving version from the warehouse; a running `patron serve` switches to it within seconds."""
    with errors():
        settings = load_settings(project_dir(project))
        with progress_reporter() as reporter:
            result = pipeline.publish(settings, keep=keep, reporter=reporter)
    manifest = result.manifest
    console.print(f"Published serving version {manifest.version}: {manifest.customers:,} customers, "
                  f"{len(manifest.tables)} tables, in {result.seconds:.1f} s; the service answers from it now.")
    if result.pruned:
        console.print(f"Pruned {len(result.pruned)} older version(s): {', '.join(result.pruned)}.")


keys_app = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, analyst, marketer or store.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Create an API key for a role; it is printed once and stored only as a salted hash."""
    with errors():
        settings = load_settings(project_dir(project))
        key = pipeline.create_api_key(settings, role)
    console.print(key, highlight=False, soft_wrap=True)
    err_console.print(f"Key for role {role} created; store it now, it cannot be shown again.")


@keys_app.command("list")
def keys_list(project: ProjectOption = None) -> None:  # type: ignore[assignment]
    """Every API key's id, role, creation time and whether it is revoked (never the key)."""
    with errors():
        keys = pipeline.api_keys(load_settings(project_dir(project)))
    console.print(keys_table(keys))


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The 12 hex digits after ptk_.")],
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Revoke an API key: a running service refuses it within 5 seconds (at once through DELETE /keys/{id})."""
    with errors():
        revoked = pipeline.revoke_api_key(load_settings(project_dir(project)), key_id)
    if not revoked:
        raise fail(f"no API key {key_id}; `patron keys list` shows them")
    console.print(f"Key {key_id} revoked.")
