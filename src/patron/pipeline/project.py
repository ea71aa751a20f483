"""The project around the steps: progress reporting, the warehouse a step opens, init and API keys.

Every step of the pipeline reports through a :class:`Reporter` and opens the project's
warehouse with :func:`open_warehouse`, so these two live here, below the steps. API keys
are project administration rather than a data step, so they sit beside ``init``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from patron.config import Settings, load_settings, write_default_config
from patron.engine import Warehouse, connect
from patron.governance.security import create_key, list_keys, revoke_key
from patron.serving.online import open_online_store
from patron.transforms.propose import propose_source


class Reporter:
    """Where long steps report progress and what they skipped; the default stays silent.

    ``note`` is how a step says, once and in plain words, what it left out and why
    ("no returns table: GP2 counts no refunds"). Notes are kept in ``notes`` (each
    message once) so that library users can read them after the step.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A unit of work; the yielded function advances it by ``n`` items."""
        yield lambda n=1: None

    def note(self, message: str) -> None:
        """Record that a step skipped or assumed something; a repeated message is kept once."""
        if message not in self.notes:
            self.notes.append(message)
            self.show_note(message)

    def show_note(self, message: str) -> None:
        """Show a new note; the default shows nothing (the CLI prints it)."""


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """Connect to the project's warehouse for one step, closing it afterwards.

    Every engine can be closed: DuckDB releases its file (so the next step, or another
    process, may open it), Spark keeps its shared session.
    """
    with connect(settings) as warehouse:
        yield warehouse


def init_project(project_dir: Path, *, engine: str = "duckdb", from_file: Path | None = None,
                 reporter: Reporter | None = None) -> Settings:
    """Write ``patron.toml`` in ``project_dir`` and create its empty warehouse.

    With ``from_file``, ``patron.toml`` also gets a proposed ``[[sources]]`` mapping of the
    file (:func:`patron.transforms.propose.propose_source`); what was guessed, and what
    was not, goes to ``reporter`` as notes.
    """
    sources = ""
    if from_file is not None:
        proposal = propose_source(from_file, project_dir=project_dir)
        sources = proposal.toml
        for line in proposal.summary:
            (reporter or Reporter()).note(line)
    write_default_config(project_dir, engine=engine, sources=sources)
    settings = load_settings(project_dir)
    with open_warehouse(settings):
        pass
    return settings


# -- API keys -------------------------------------------------------------------------
def create_api_key(settings: Settings, role: str) -> str:
    """A new API key for ``role``; only its salted hash is stored."""
    with open_online_store(settings) as store:
        return create_key(store, role)


def api_keys(settings: Settings) -> list[dict[str, object]]:
    """Every API key's id, role, creation time and revocation flag (never the hash)."""
    with open_online_store(settings) as store:
        return list_keys(store)


def revoke_api_key(settings: Settings, key_id: str) -> bool:
    """Revoke key ``key_id``; False when there is no such key."""
    with open_online_store(settings) as store:
        return revoke_key(store, key_id)
