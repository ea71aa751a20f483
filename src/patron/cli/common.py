"""What every command shares: the consoles, progress reporters, error handling and argument helpers."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from patron import pipeline
from patron.errors import PatronError

__all__ = [
    "UNBOUNDED_WIDTH", "NoteReporter", "ProjectOption", "RichReporter", "console", "err_console", "errors", "fail",
    "make_console", "parse_date", "progress_reporter", "project_dir",
]

#: Width of the consoles when the output is not a terminal (a file, a pipe, CI): wide enough that no
#: table column is cut to "engagement_eve…"; a terminal keeps its own width, and ``COLUMNS`` wins over both.
UNBOUNDED_WIDTH = 10_000


def make_console(*, stderr: bool = False) -> Console:
    """A Rich console on stdout (or stderr) that never truncates when its output is not a terminal.

    On a terminal Rich fits tables to the window; written to a file or captured by CI it
    would fall back to 80 columns and cut column names with an ellipsis, so there the
    console is made :data:`UNBOUNDED_WIDTH` wide (tables keep their natural width).
    """
    made = Console(stderr=stderr)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = UNBOUNDED_WIDTH
    return made


console = make_console()
err_console = make_console(stderr=True)

ProjectOption = Annotated[
    Path, typer.Option("--project", "-p", help="Folder holding patron.toml.", show_default=False)
]


class RichReporter(pipeline.Reporter):
    """Progress bars on the terminal for the pipeline's long steps."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def show_note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        task_id = self.progress.add_task(description, total=total)
        yield lambda n=1: self.progress.advance(task_id, n)
        self.progress.update(task_id, completed=total if total is not None else 1, total=total or 1)


class NoteReporter(pipeline.Reporter):
    """Notes on standard error (stdout stays the command's result), for steps without a progress bar."""

    def show_note(self, message: str) -> None:
        err_console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def progress_reporter() -> Iterator[RichReporter]:
    """A :class:`RichReporter` drawing on stdout for the length of the ``with`` block."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        try:
            yield RichReporter(progress)
        except BaseException:
            # a failed step: clear the display (no stalled "⠋ Ingesting 0/1" line, nor an empty one in a
            # file) before the error is printed below it
            for task_id in list(progress.task_ids):
                progress.remove_task(task_id)
            progress.live.transient = True
            progress.live.stop()
            progress.disable = True  # its own stop would add an empty line to a file or pipe
            raise


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line on stderr; the caller raises the returned exit."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """patron's own errors become one clear line and a non-zero exit; so does anything else.

    An error patron did not foresee is a bug, but the user still gets one line naming it
    (and the traceback with ``PATRON_DEBUG=1``), never a page of a library's internals.
    """
    try:
        yield
    except PatronError as exc:
        raise fail(str(exc)) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("PATRON_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise fail(f"unexpected {type(exc).__name__}: {first} (a bug in patron: please report it; "
                   "PATRON_DEBUG=1 shows the traceback)") from None


def project_dir(project: Path | None) -> Path:
    """The project folder of ``--project``, or the working folder without it."""
    return project if project is not None else Path.cwd()


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` option as a date; anything else is a usage error (exit 2)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"not a date (YYYY-MM-DD): {text!r}", 2) from None
