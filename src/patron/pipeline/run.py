"""``patron run``: the whole pipeline from ``patron.toml``, in order, one run at a time.

ingest (every ``[[sources]]`` entry; files already ingested are skipped by content hash),
validate (a blocking failure stops the run), resolve, summarise, features, backtest (when the
latest is older than ``[run] backtest_every_days``), fit, score, segments, the audience files
of ``[[run.exports]]`` and publish (a new serving version, which a running service picks up).
Safe to schedule daily: a lock file in the project folder keeps a second run from starting
while one works, and names the one that holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from patron.config import Settings
from patron.errors import ConfigError, RunInProgress
from patron.evaluation import latest_champion
from patron.pipeline.activation import export_audience, segments
from patron.pipeline.data import ingest, require_quality, resolve, summarise, validate
from patron.pipeline.modelling import backtest, features, fit, score
from patron.pipeline.project import Reporter, open_warehouse
from patron.pipeline.publishing import publish

#: The steps of a run, in the order they run.
STEPS = ("ingest", "validate", "resolve", "summarise", "features", "backtest", "fit", "score", "segments",
         "exports", "publish")
LOCK_NAME = "patron-run.lock"


@dataclass(frozen=True)
class StepOutcome:
    """What one step of a run did: ``done`` or ``skipped``, how long it took, in a few words."""

    step: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class RunResult:
    """The steps a run took, in order."""

    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def chosen_steps(steps: Sequence[str] | None = None, start: str | None = None) -> tuple[str, ...]:
    """The steps to run: all, the named ones (in pipeline order), or every step from ``start`` on."""
    if steps and start:
        raise ConfigError("give --steps or --from, not both")
    unknown = [s for s in [*(steps or ()), *([start] if start else [])] if s not in STEPS]
    if unknown:
        raise ConfigError(f"unknown step(s) {', '.join(unknown)}; the steps are {', '.join(STEPS)}")
    if start:
        return STEPS[STEPS.index(start):]
    if steps:
        return tuple(s for s in STEPS if s in steps)
    return STEPS


def run(settings: Settings, *, steps: Sequence[str] | None = None, start: str | None = None,
        reporter: Reporter | None = None, now: dt.datetime | None = None) -> RunResult:
    """Run the pipeline's ``steps`` (default: all; ``start``: from that step on) under the project's lock.

    Stops at the first step that fails (a blocking data-quality check raises ``QualityError``):
    later steps would build on data or models that are not there.
    """
    reporter = reporter or Reporter()
    todo = chosen_steps(steps, start)
    actions: dict[str, Callable[[], str | None]] = {
        "ingest": lambda: _ingest(settings, reporter),
        "validate": lambda: _validate(settings, now),
        "resolve": lambda: f"{resolve(settings, reporter=reporter).customers:,} customers",
        "summarise": lambda: f"to {summarise(settings, reporter=reporter).observation_end}",
        "features": lambda: _features(settings, reporter),
        "backtest": lambda: _backtest(settings, reporter, now),
        "fit": lambda: _fit(settings, reporter),
        "score": lambda: f"{score(settings, reporter=reporter, charts=True).result.customers:,} customers",
        "segments": lambda: _segments(settings, reporter),
        "exports": lambda: _exports(settings),
        "publish": lambda: _publish(settings, reporter),
    }
    result = RunResult()
    with run_lock(settings, todo, now=now):
        for step in todo:
            started = time.perf_counter()
            detail = actions[step]()
            skipped = detail is not None and detail.startswith("skipped: ")
            result.steps.append(StepOutcome(step, "skipped" if skipped else "done", time.perf_counter() - started,
                                            detail.removeprefix("skipped: ") if detail else ""))
    return result


# -- the steps that decide something ----------------------------------------------------
def _ingest(settings: Settings, reporter: Reporter) -> str:
    if not settings.sources:
        return "skipped: no [[sources]] in patron.toml (ingest files with `patron ingest PATH`)"
    results = ingest(settings, reporter=reporter)
    loaded = sum(r.loaded for r in results)
    unchanged = {r.file for r in results if r.skipped_file}
    read = {r.file for r in results} - unchanged
    return f"{loaded:,} rows loaded from {len(read)} file(s); {len(unchanged)} unchanged file(s) skipped"


def _segments(settings: Settings, reporter: Reporter) -> str:
    tiers = segments(settings, reporter=reporter)["value_tier"]
    return f"{int(tiers['customers'].sum()):,} customers in {len(tiers)} value tiers"


def _validate(settings: Settings, now: dt.datetime | None) -> str:
    report = validate(settings, now=now)
    require_quality(report)
    return f"{len(report.results)} checks passed or warned"


def _features(settings: Settings, reporter: Reporter) -> str:
    made = features(settings, reporter=reporter)
    return f"{made.customers:,} customers as of {made.as_of}"


def _fit(settings: Settings, reporter: Reporter) -> str:
    models = fit(settings, reporter=reporter)
    return f"{models.settings.get('purchase_model')}: {models.settings.get('purchase_model_reason')}"


def _backtest(settings: Settings, reporter: Reporter, now: dt.datetime | None) -> str:
    every = settings.run.backtest_every_days
    with open_warehouse(settings) as warehouse:
        latest = latest_champion(warehouse)
    if latest is not None and every > 0:
        age = pd.Timestamp(now or dt.datetime.now(dt.UTC)) - pd.Timestamp(latest.created_at)
        if age < pd.Timedelta(days=every):
            return (f"skipped: the latest backtest ({latest.run_id}) is {age.days} day(s) old; "
                    f"[run] backtest_every_days = {every}")
    made = backtest(settings, reporter=reporter, charts=True)
    return f"champion {made.result.champion}"


def _publish(settings: Settings, reporter: Reporter) -> str:
    result = publish(settings, reporter=reporter)
    pruned = f", {len(result.pruned)} pruned" if result.pruned else ""
    return f"version {result.manifest.version}, {result.manifest.customers:,} customers{pruned}"


def _exports(settings: Settings) -> str:
    if not settings.run.exports:
        return "skipped: no [[run.exports]] in patron.toml"
    written = []
    for export in settings.run.exports:
        out = export.path(settings.project_dir)
        done = export_audience(settings, export.audience, export.format, out, market=export.market)
        left_out = f", {done.excluded_no_consent:,} left out without marketing consent" if done.excluded_no_consent \
            else ""
        written.append(f"{export.audience} ({done.rows:,} rows{left_out}) to {out}")
    return "; ".join(written)


# -- one run at a time -----------------------------------------------------------------
@contextmanager
def run_lock(settings: Settings, steps: Sequence[str], *, now: dt.datetime | None = None) -> Iterator[Path]:
    """Hold the project's run lock while the block runs; ``RunInProgress`` names the run that holds it.

    The lock is a file created exclusively (``O_EXCL``) holding the process id, host, start
    time and steps. A lock left by a process that no longer runs on this host is taken over.
    """
    path = settings.project_dir / LOCK_NAME
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "started_at": (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds"),
              "steps": list(steps)}
    if not _create(path, holder):
        other = _read(path)
        if other is not None and _alive(other):
            raise RunInProgress(
                f"another `patron run` is running: process {other.get('pid')} on {other.get('host')}, started "
                f"{other.get('started_at')} (steps {', '.join(other.get('steps') or [])}); wait for it to end, "
                f"or delete {path} if that process is gone")
        path.unlink(missing_ok=True)  # stale: its process ended without removing it
        if not _create(path, holder):
            raise RunInProgress(f"another `patron run` took the lock {path} just now")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _create(path: Path, holder: dict[str, object]) -> bool:
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(holder, file)
    return True


def _read(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _alive(holder: dict[str, object]) -> bool:
    """Whether the lock's process still runs (one on another host is taken to run)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True
