"""Commands of the scoring service: serve, and the ``keys`` group (create, list, revoke)."""

from __future__ import annotations

from typing import Annotated

import typer

from patron import pipeline
from patron.cli.common import ProjectOption, console, err_console, errors, fail, project_dir
from patron.cli.render import keys_table
from patron.config import load_settings

__all__ = ["keys_app", "keys_create", "keys_list", "keys_revoke", "serve"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    project: ProjectOption = None,  # type: ignore[assignment]
) -> None:
    """Run the scoring API (OpenAPI docs at /docs); requests need an X-API-Key header."""
    with errors():
        settings = load_settings(project_dir(project))
        try:
            import uvicorn

            from patron.service.app import create_app
        except ImportError:
            raise fail("the service needs the 'service' extra: pip install 'patron[service]'") from None
        uvicorn.run(create_app(settings), host=host, port=port)


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
    err_console.print(f"Key for role {role} created; store it now, it cannot be shown again. "
                      "(While `patron serve` runs, create keys through its POST /keys instead.)")


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
    """Revoke an API key: the service refuses it within 5 seconds (or at once through DELETE /keys/{id})."""
    with errors():
        revoked = pipeline.revoke_api_key(load_settings(project_dir(project)), key_id)
    if not revoked:
        raise fail(f"no API key {key_id}; `patron keys list` shows them")
    console.print(f"Key {key_id} revoked.")
