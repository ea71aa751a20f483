"""The embedded online store: SQLite files in the serving folder, no server to run.

Why SQLite: a lookup is a point read of one document by key, and SQLite answers one from
a B-tree in microseconds inside the service's process (DuckDB, made for scans, takes
about a millisecond per query; benchmarks/bench_service.py measures both). It is also
Feast's local default.

Layout (under ``[serve] dir``):

- ``versions/<version>/online.sqlite``: the version's documents (``docs``), and
  ``identities.sqlite`` beside it its identity look-ups (``identities``): each written once
  by ``patron publish`` (in two threads, so two files: no lock between them) into a file
  nobody reads yet, then opened read-only by the service. Erasure is the only later writer.
- ``state.sqlite``: the event log (``events``), the live rows (``live``) and the API keys
  (``api_keys``), in WAL mode so readers never wait for the one writer, with
  ``synchronous = FULL``: an event is on disk before the service answers.

Connections are per thread and per file (a SQLite connection must not be shared by
threads running at once); several service processes share the files through SQLite's
own locking.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from patron.errors import Conflict
from patron.serving.online.base import EVENT_FIELDS, KEY_FIELDS, LiveRow, OnlineStore, StaleLiveRow

#: The version file's name inside its folder (the documents).
VERSION_FILE = "online.sqlite"
#: The file of the version's identity look-ups, beside its documents.
IDENTITY_FILE = "identities.sqlite"
#: The file of the event log, live rows and API keys.
STATE_FILE = "state.sqlite"
BUSY_TIMEOUT_MS = 10_000

_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL UNIQUE, customer_key TEXT NOT NULL,
    ordered_at TEXT NOT NULL, channel TEXT, country TEXT, store_id TEXT, revenue REAL, gp2 REAL,
    received_at TEXT NOT NULL, key_id TEXT);
CREATE INDEX IF NOT EXISTS events_customer ON events (customer_key);
CREATE INDEX IF NOT EXISTS events_time ON events (ordered_at);
CREATE TABLE IF NOT EXISTS live (customer_key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, salt TEXT NOT NULL, key_hash TEXT NOT NULL,
    role TEXT NOT NULL, created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
"""
#: Page size of a version's file (set before its tables are made).
PAGE_SIZE = 16_384
_VERSION_SCHEMA = """
CREATE TABLE docs (customer_key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE ready (finished_at TEXT NOT NULL);
"""
_IDENTITY_SCHEMA = """
CREATE TABLE identities (kind TEXT NOT NULL, value TEXT NOT NULL, customer_key TEXT NOT NULL,
    PRIMARY KEY (kind, value, customer_key)) WITHOUT ROWID;
"""


def iso(value: Any) -> str | None:
    """A time as ISO text in UTC (text passes through)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    return str(value)


class EmbeddedStore(OnlineStore):
    """:class:`OnlineStore` in SQLite files under ``root`` (the serving folder)."""

    backend = "embedded"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        with self._state() as con:
            con.executescript(_STATE_SCHEMA)

    # -- connections -----------------------------------------------------------------------
    def version_path(self, version: str) -> Path:
        return self.root / "versions" / version / VERSION_FILE

    def _connection(self, path: Path, *, read_only: bool) -> sqlite3.Connection:
        """This thread's connection to ``path`` (opened on first use, closed with the store)."""
        cache: dict[tuple[str, bool], sqlite3.Connection] = self._local.__dict__.setdefault("cons", {})
        key = (str(path), read_only)
        con = cache.get(key)
        if con is None:
            if read_only:
                con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                      isolation_level=None, check_same_thread=False)
            else:
                con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cache[key] = con
            with self._guard:
                self._all.append(con)
        return con

    def _state(self) -> sqlite3.Connection:
        con = self._connection(self.root / STATE_FILE, read_only=False)
        if not getattr(self._local, "state_ready", False):
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            self._local.state_ready = True
        return con

    def _forget(self, path: Path) -> None:
        """Close every thread's connections to ``path`` that this thread knows (a dropped version)."""
        cache = self._local.__dict__.get("cons", {})
        for key in [k for k in cache if k[0] == str(path)]:
            cache.pop(key).close()

    def close(self) -> None:
        with self._guard:
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()

    # -- serving versions ------------------------------------------------------------------
    def identity_path(self, version: str) -> Path:
        return self.version_path(version).with_name(IDENTITY_FILE)

    def _new_file(self, path: Path, schema: str) -> sqlite3.Connection:
        """This thread's writing connection to ``path``, a version's file made with ``schema`` on first use."""
        if path.exists():
            return self._connection(path, read_only=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connection(path, read_only=False)
        # documents run to a few KB: in 16 KB pages of a rowid table they rarely overflow (100k: written 2.5x
        # faster, a third smaller, read as fast as in 4 KB pages WITHOUT ROWID, which suits small rows only)
        con.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        con.execute("PRAGMA journal_mode = OFF")  # a new file nobody reads: no journal while it fills
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(schema)
        return con

    def _writer(self, version: str) -> sqlite3.Connection:
        return self._new_file(self.version_path(version), _VERSION_SCHEMA)

    def write_docs(self, version: str, batches: Iterable[Sequence[tuple[str, str]]]) -> int:
        con, count = self._writer(version), 0
        for batch in batches:
            con.execute("BEGIN")
            con.executemany("INSERT INTO docs VALUES (?, ?)", batch)
            con.execute("COMMIT")
            count += len(batch)
        return count

    def write_identities(self, version: str, batches: Iterable[Sequence[tuple[str, str, str]]]) -> int:
        """The rows go to the version's own look-up file (no lock shared with the documents' file, so a publish
        writes both at once). Batches in key order (``kind, value, customer_key``) only grow the B-tree at its end:
        3.2M rows in random order took 28 s at 1M customers, in key order 6 s."""
        con, count = self._new_file(self.identity_path(version), _IDENTITY_SCHEMA), 0
        for batch in batches:
            if any("\0" in value or "\0" in key for _, value, key in batch):
                raise ValueError("identity values and customer keys cannot hold a NUL character")
            con.execute("BEGIN")
            con.executemany("INSERT OR IGNORE INTO identities VALUES (?, ?, ?)", batch)
            con.execute("COMMIT")
            count += len(batch)
        return count

    def finish_version(self, version: str) -> None:
        self._new_file(self.identity_path(version), _IDENTITY_SCHEMA)  # a version without look-ups has an empty one
        self._writer(version).execute("INSERT INTO ready VALUES (?)", [iso(dt.datetime.now(dt.UTC))])
        for path in (self.identity_path(version), self.version_path(version)):  # ready is the last one on disk
            con = self._connection(path, read_only=False)
            con.execute("PRAGMA journal_mode = DELETE")  # erasure, the one later writer, gets a rollback journal
            self._forget(path)
            with open(path, "rb+") as handle:  # on disk before the pointer moves to it
                os.fsync(handle.fileno())

    def has_version(self, version: str) -> bool:
        path = self.version_path(version)
        if not path.exists():
            return False
        try:
            row = self._connection(path, read_only=True).execute("SELECT count(*) FROM ready").fetchone()
        except sqlite3.DatabaseError:
            return False
        return bool(row and row[0])

    def doc(self, version: str, customer_key: str) -> str | None:
        if not self._readable(version):
            return None
        row = self._connection(self.version_path(version), read_only=True).execute(
            "SELECT doc FROM docs WHERE customer_key = ?", [customer_key]).fetchone()
        return None if row is None else row[0]

    def identity(self, version: str, kind: str, value: str) -> list[str]:
        if not self._readable(version):
            return []
        path = self.identity_path(version)
        if not self._readable(version, path):
            path = self.version_path(version)  # a version published before the look-ups had their own file
        rows = self._connection(path, read_only=True).execute(
            "SELECT customer_key FROM identities WHERE kind = ? AND value = ? ORDER BY customer_key",
            [kind, value]).fetchall()
        return [r[0] for r in rows]

    def _readable(self, version: str, path: Path | None = None) -> bool:
        """Whether ``version``'s file (``path``, by default its documents') is there (a dropped or unknown version
        has none); checked once a thread holds a connection to it."""
        cache = self._local.__dict__.get("cons", {})
        path = path or self.version_path(version)
        return (str(path), True) in cache or path.exists()

    def drop_version(self, version: str) -> None:
        path = self.version_path(version)
        self._forget(path)
        self._forget(self.identity_path(version))
        # a reader still holding the file keeps reading it: POSIX frees it with the last handle
        shutil.rmtree(path.parent, ignore_errors=True)

    # -- live rows and the event log ---------------------------------------------------------
    def live(self, customer_key: str) -> LiveRow | None:
        row = self._state().execute("SELECT seq, doc FROM live WHERE customer_key = ?", [customer_key]).fetchone()
        return None if row is None else LiveRow(int(row[0]), row[1])

    def set_live(self, customer_key: str, seq: int, doc: str) -> bool:
        changed = self._state().execute("UPDATE live SET doc = ? WHERE customer_key = ? AND seq = ?",
                                        [doc, customer_key, int(seq)]).rowcount  # autocommit: one atomic write
        return changed == 1

    def record_events(self, items: Sequence[tuple[dict[str, Any], int | None, str]]) -> list[int | Exception]:
        """All of ``items`` in one transaction: one disk flush for the batch (``synchronous = FULL``)."""
        con = self._state()
        con.execute("BEGIN IMMEDIATE")  # the write lock first: the checks and the writes see one state
        outcomes: list[int | Exception] = []
        try:
            for event, expected_seq, doc in items:
                outcomes.append(self._append(con, event, expected_seq, doc))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return outcomes

    @staticmethod
    def _append(con: sqlite3.Connection, event: dict[str, Any], expected_seq: int | None,
                doc: str) -> int | Exception:
        """Log one event and set the live row inside the open transaction; the refusal instead when it is refused
        (checked before anything is written)."""
        key = event["customer_key"]
        if con.execute("SELECT 1 FROM events WHERE order_id = ?", [event["order_id"]]).fetchone():
            return Conflict(f"order {event['order_id']!r} is recorded already")
        row = con.execute("SELECT seq FROM live WHERE customer_key = ?", [key]).fetchone()
        if (None if row is None else int(row[0])) != expected_seq:
            return StaleLiveRow(key)
        values = [iso(event.get(f)) if f in ("ordered_at", "received_at") else event.get(f)
                  for f in EVENT_FIELDS[1:]]
        cursor = con.execute(f"INSERT INTO events ({', '.join(EVENT_FIELDS[1:])}) VALUES "
                             f"({', '.join('?' * (len(EVENT_FIELDS) - 1))})", values)
        seq = int(cursor.lastrowid or 0)
        con.execute("INSERT INTO live VALUES (?, ?, ?) ON CONFLICT (customer_key) DO UPDATE "
                    "SET seq = excluded.seq, doc = excluded.doc", [key, seq, doc])
        return seq

    def has_event(self, order_id: str) -> bool:
        return self._state().execute("SELECT 1 FROM events WHERE order_id = ?", [order_id]).fetchone() is not None

    def events_after(self, seq: int, *, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = self._state().execute(f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE seq > ? ORDER BY seq "
                                     "LIMIT ?", [seq, limit]).fetchall()
        return [dict(zip(EVENT_FIELDS, r, strict=True)) for r in rows]

    def last_seq(self) -> int:
        row = self._state().execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def latest_ordered_at(self, after_seq: int) -> str | None:
        # times are stored as UTC ISO text (iso()), so the text order is the time order; read from the latest
        # down the index until an event after the seq (events posted since a version are the latest ones)
        row = self._state().execute("SELECT ordered_at FROM events INDEXED BY events_time WHERE seq > ? "
                                    "ORDER BY ordered_at DESC LIMIT 1", [after_seq]).fetchone()
        return None if row is None else row[0]

    def prune_live(self, upto_seq: int) -> int:
        con = self._state()
        return con.execute("DELETE FROM live WHERE seq <= ?", [upto_seq]).rowcount

    # -- erasure -------------------------------------------------------------------------
    def erase(self, customer_keys: Sequence[str], versions: Sequence[str]) -> int:
        keys = list(dict.fromkeys(customer_keys))
        if not keys:
            return 0
        marks = ", ".join("?" * len(keys))
        removed = 0
        for version in versions:
            path = self.version_path(version)
            if not path.exists():
                continue
            looked_up = self.identity_path(version)
            statements = [(path, "docs"), (looked_up if looked_up.exists() else path, "identities")]
            for file, table in statements:
                con = self._connection(file, read_only=False)
                con.execute("BEGIN IMMEDIATE")
                removed += con.execute(f"DELETE FROM {table} WHERE customer_key IN ({marks})", keys).rowcount
                con.execute("COMMIT")
                self._forget(file)
        state = self._state()
        state.execute("BEGIN IMMEDIATE")
        removed += state.execute(f"DELETE FROM live WHERE customer_key IN ({marks})", keys).rowcount
        removed += state.execute(f"DELETE FROM events WHERE customer_key IN ({marks})", keys).rowcount
        state.execute("COMMIT")
        return removed

    # -- API keys --------------------------------------------------------------------------
    def api_keys(self) -> list[dict[str, Any]]:
        rows = self._state().execute(f"SELECT {', '.join(KEY_FIELDS)} FROM api_keys ORDER BY created_at, key_id")
        out = []
        for row in rows.fetchall():
            record = dict(zip(KEY_FIELDS, row, strict=True))
            record["created_at"] = dt.datetime.fromisoformat(record["created_at"])
            record["revoked"] = bool(record["revoked"])
            out.append(record)
        return out

    def add_api_key(self, row: dict[str, Any]) -> None:
        values = [iso(row[f]) if f == "created_at" else (int(bool(row[f])) if f == "revoked" else row[f])
                  for f in KEY_FIELDS]
        try:
            self._state().execute(f"INSERT INTO api_keys ({', '.join(KEY_FIELDS)}) VALUES (?, ?, ?, ?, ?, ?)", values)
        except sqlite3.IntegrityError:
            raise Conflict(f"API key {row['key_id']} exists already") from None

    def revoke_api_key(self, key_id: str) -> bool:
        return self._state().execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", [key_id]).rowcount > 0
