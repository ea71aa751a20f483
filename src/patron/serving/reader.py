"""The current serving version as the service sees it, reloaded when ``CURRENT`` moves.

:class:`ServingReader` looks at the pointer at most every ``[serve] reload_seconds`` and,
when it names a new version, opens it fully (manifest, Parquet views, champion models,
documents) before the first request uses it; requests already running finish on the
version they started with. A missing or corrupt version is refused with
``NotConfigured`` (503, with the reason) and the reader keeps serving the version it has.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patron.config import Settings
from patron.engine import DuckDBWarehouse, parquet_snapshot
from patron.errors import NotConfigured, PatronError
from patron.scoring.model_store import FittedValueModels, load_models
from patron.serving.coalesce import Coalescer
from patron.serving.documents import expand
from patron.serving.layout import TABLES, Manifest, current_version, read_manifest, version_dir
from patron.serving.online import OnlineStore
from patron.serving.rescore import Rescorer
from patron.transforms.seasonality import Seasonality, stored_seasonality


@dataclass
class ServingVersion:
    """One opened serving version: its manifest, its tables as a read-only warehouse, its champion models."""

    manifest: Manifest
    warehouse: DuckDBWarehouse
    models: FittedValueModels | None
    clock: Seasonality | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _rescorers: list[Rescorer] = field(default_factory=list)
    #: Concurrent events of this process, written (and rescored) in batches (:mod:`patron.serving.events`).
    events: Coalescer[Any, Any] = field(default_factory=Coalescer)
    #: Concurrent lookups of customers whose live rows await rescoring, rescored in batches.
    rescores: Coalescer[Any, Any] = field(default_factory=Coalescer)

    @property
    def name(self) -> str:
        return self.manifest.version

    @property
    def observation_end(self) -> dt.date | None:
        end = self.manifest.observation_end
        return None if end is None else dt.date.fromisoformat(end)

    def champion(self) -> FittedValueModels:
        """The version's champion models; 503 when it has none."""
        if self.models is None:
            raise NotConfigured("the serving version holds no fitted models: run `patron fit`, `patron score` and "
                                "`patron publish`")
        return self.models

    def rescorer(self) -> Rescorer:
        """The version's rescorer on its models and clock (made on first use).

        One per version and process: only the thread leading a batch of :attr:`events` uses
        it, one at a time, so its compiled and prepared queries are made once.
        """
        with self.lock:
            if not self._rescorers:
                self._rescorers.append(Rescorer(self.warehouse.settings, self.champion(), self.clock))
            return self._rescorers[0]

    def close(self) -> None:
        for rescorer in self._rescorers:
            rescorer.close()
        self.warehouse.close()


def open_version(settings: Settings, store: OnlineStore, version: str) -> ServingVersion:
    """Open ``version`` of the serving folder; ``NotConfigured`` (503) naming what is missing or corrupt."""
    root = settings.serving_dir
    manifest = read_manifest(root, version)
    folder = version_dir(root, version) / TABLES
    files = {name: folder / f"{name}.parquet" for name in manifest.tables}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise NotConfigured(f"serving version {version} is corrupt: missing {', '.join(missing)}; "
                            "run `patron publish`")
    if not store.has_version(version):
        raise NotConfigured(f"serving version {version} has no documents in the {store.backend} online store; "
                            "run `patron publish`")
    try:
        warehouse = parquet_snapshot(settings, files)
    except Exception as exc:
        raise NotConfigured(f"serving version {version} is corrupt: {exc}") from exc
    try:
        models = load_models(warehouse) if "models" in files else None
    except PatronError:
        models = None
    except Exception as exc:  # an unreadable Parquet file
        warehouse.close()
        raise NotConfigured(f"serving version {version} is corrupt: {exc}") from exc
    try:
        clock = stored_seasonality(warehouse)
    except Exception as exc:
        warehouse.close()
        raise NotConfigured(f"serving version {version} is corrupt: {exc}") from exc
    return ServingVersion(manifest=manifest, warehouse=warehouse, models=models, clock=clock)


class ServingReader:
    """The current version, reloaded within ``reload_seconds`` of a publish; thread-safe."""

    def __init__(self, settings: Settings, store: OnlineStore, *, reload_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store
        self.reload_seconds = settings.serve.reload_seconds if reload_seconds is None else reload_seconds
        self.clock = clock
        self.root: Path = settings.serving_dir
        self._version: ServingVersion | None = None
        self._checked = -float("inf")
        self._problem: str | None = None
        self._lock = threading.Lock()
        self._retired: list[ServingVersion] = []
        self.reloads = 0

    def current(self) -> ServingVersion:
        """The version to answer with; ``NotConfigured`` (503) when none can be opened."""
        now = self.clock()
        # one thread opens a new version; the others answer from the one they have meanwhile
        if now - self._checked >= self.reload_seconds and self._lock.acquire(blocking=self._version is None):
            try:
                if now - self._checked >= self.reload_seconds:
                    self._refresh()
                    self._checked = self.clock()
            finally:
                self._lock.release()
        version = self._version
        if version is None:
            raise NotConfigured(self._problem or "nothing published yet: run `patron publish`")
        return version

    def _refresh(self) -> None:
        name = current_version(self.root)
        if name is None:
            self._problem = f"nothing published yet in {self.root}: run `patron publish` (or `patron run`)"
            return
        if self._version is not None and self._version.name == name:
            return
        try:
            opened = open_version(self.settings, self.store, name)
        except NotConfigured as exc:
            self._problem = str(exc)
            return
        self._problem = None
        if self._version is not None:
            # requests may still hold it: close it at the next switch, long after they finished
            for old in self._retired:
                old.close()
            self._retired = [self._version]
        self._version = opened
        self.reloads += 1

    @property
    def problem(self) -> str | None:
        """Why the pointer's version could not be opened, None when it was."""
        return self._problem

    def close(self) -> None:
        with self._lock:
            for version in [*self._retired, *([self._version] if self._version else [])]:
                version.close()
            self._retired, self._version = [], None


@dataclass
class CustomerDoc:
    """A customer's document as its parts (:class:`patron.insights.customer_view.CustomerRecord`)."""

    rfm: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    segments: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    preferences: dict[str, Any] = field(default_factory=dict)
    personal: list[dict[str, Any]] | None = None

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> CustomerDoc:
        return cls(rfm=doc.get("rfm"), scores=doc.get("scores"), segments=doc.get("segments"),
                   orders=list(doc.get("orders") or []), preferences=dict(doc.get("preferences") or {}),
                   personal=list(doc.get("personal") or []))


def current_doc(store: OnlineStore, version: ServingVersion, key: str) -> tuple[dict[str, Any] | None, int | None]:
    """The customer's document as a lookup sees it, and the seq of their live row (None without one).

    The live row wins when an event newer than the version's data rescored the customer.
    """
    live = store.live(key)
    if live is not None and live.seq > version.manifest.events_upto:
        return json.loads(live.doc), live.seq
    return stored_doc(store, version.manifest, key), (None if live is None else live.seq)


def stored_doc(store: OnlineStore, manifest: Manifest, key: str) -> dict[str, Any] | None:
    """The customer's document as ``manifest``'s version stores it, its rows named (None when it has none)."""
    text = store.doc(manifest.version, key)
    return None if text is None else expand(json.loads(text), manifest.documents, key)
