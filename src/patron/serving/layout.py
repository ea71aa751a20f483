"""The serving folder: versions, their manifests, and the pointer to the current one.

```
serving/
  CURRENT                     the current version's name (one line), replaced atomically
  versions/<version>/
    manifest.json             written last: a version without it is unfinished
    tables/<name>.parquet     the analytical tables the pages and the service read
    online.sqlite             the embedded online store's documents (Redis keeps them itself)
    identities.sqlite         its identity look-ups (e-mail, phone, loyalty id -> customer_key)
  state.sqlite                the embedded online store's event log, live rows and API keys
```

A version's name sorts by publication time (``20261207T153012Z-1a2b3c``). The pointer moves
with :func:`switch_current` (write a temporary file, fsync, rename over ``CURRENT``): a
reader sees the old name or the new one, never a half-written file. Versions are never
changed after publication, except by erasure.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patron.errors import NotConfigured

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VERSIONS = "versions"
TABLES = "tables"
#: Manifest format; a reader refuses another.
FORMAT = 1
#: How a customer document writes a time: ISO 8601 in UTC to the microsecond (DuckDB's and Python's strftime alike).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Manifest:
    """What a serving version holds: its name, when and from what it was published, its tables."""

    version: str
    published_at: str  # ISO time, UTC
    engine: str  # the warehouse's engine
    online_store: str  # the backend holding the documents
    customers: int
    model_id: str | None
    observation_end: str | None  # ISO date
    events_upto: int  # the event log's seq up to which the version's data holds every event
    tables: dict[str, int] = field(default_factory=dict)  # table name -> rows
    documents: dict[str, list[str]] = field(default_factory=dict)  # document part -> its columns (serving.documents)
    format: int = FORMAT

    @property
    def published(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.published_at)

    def age_seconds(self, now: dt.datetime | None = None) -> float:
        return ((now or dt.datetime.now(dt.UTC)) - self.published).total_seconds()


VERSION_TIME = "%Y%m%dT%H%M%S%fZ"


def new_version(root: Path, now: dt.datetime | None = None) -> str:
    """A fresh version name that sorts after every folder under ``root``: the UTC time to the microsecond
    and six random hex digits.

    Versions are ordered by name (pruning keeps the newest), so two publishes within one clock tick, or a
    clock set back, must still give a later name: the time then moves one microsecond past the latest.
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    folder = root / VERSIONS
    taken = [_version_time(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    latest = max((t for t in taken if t is not None), default=None)
    if latest is not None and now <= latest:
        now = latest + dt.timedelta(microseconds=1)
    return f"{now:{VERSION_TIME}}-{secrets.token_hex(3)}"


def _version_time(name: str) -> dt.datetime | None:
    """The time a version name carries (older names carry whole seconds); None for other folder names."""
    stamp = name.split("-", 1)[0]
    for layout in (VERSION_TIME, "%Y%m%dT%H%M%SZ"):
        try:
            return dt.datetime.strptime(stamp, layout).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def version_dir(root: Path, version: str) -> Path:
    return root / VERSIONS / version


def table_path(root: Path, version: str, table: str) -> Path:
    return version_dir(root, version) / TABLES / f"{table}.parquet"


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into its version's folder, durably (the version is complete once it is there)."""
    path = version_dir(root, manifest.version) / MANIFEST
    _write_durably(path, json.dumps(asdict(manifest), indent=2, sort_keys=True))
    return path


def read_manifest(root: Path, version: str) -> Manifest:
    """The manifest of ``version``; ``NotConfigured`` (503) when it is missing or unreadable."""
    path = version_dir(root, version) / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        manifest = Manifest(**data)
    except FileNotFoundError:
        raise NotConfigured(f"serving version {version} is incomplete: {path} is missing; "
                            "run `patron publish`", status_code=503) from None
    except (ValueError, TypeError) as exc:
        raise NotConfigured(f"serving version {version} is corrupt: {path}: {exc}; run `patron publish`",
                            status_code=503) from None
    if manifest.format != FORMAT or manifest.version != version:
        raise NotConfigured(f"serving version {version} is corrupt: {path} names version {manifest.version!r}, "
                            f"format {manifest.format}; run `patron publish`", status_code=503)
    return manifest


def current_version(root: Path) -> str | None:
    """The name in ``CURRENT``, None before the first publish."""
    try:
        name = (root / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def switch_current(root: Path, version: str) -> None:
    """Point ``CURRENT`` at ``version`` atomically."""
    _write_durably(root / CURRENT, version + "\n")


def versions(root: Path) -> list[str]:
    """The published versions (with a manifest), oldest first."""
    folder = root / VERSIONS
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if (p / MANIFEST).is_file()]
    return sorted(names, key=lambda name: (_version_time(name) or dt.datetime.min.replace(tzinfo=dt.UTC), name))


def _write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it, fsynced on the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
