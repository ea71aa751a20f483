"""The online store: what the service reads and writes at request time, one interface for every backend.

A *serving version* (``patron publish``) puts one JSON document per customer into the
online store (:meth:`OnlineStore.write_docs`) together with the identity look-ups
(normalised e-mail, phone, loyalty id -> customer key); the version's Parquet files and
manifest lie in the serving folder (:mod:`patron.serving.layout`), which also holds the
pointer to the current version. Documents are immutable per version: a new version is
written beside the old one and the service switches when the pointer moves.

Besides the versions the store keeps what must outlive them:

- the **event log**: every order posted to ``POST /events``, committed before the service
  answers, numbered by ``seq`` (1, 2, ...). The batch takes the events after the last
  ``seq`` it holds (``patron ingest``/``summarise``), so each is ingested exactly once;
- the **live rows**: a customer's document rescored after their latest event, tagged with
  that event's ``seq``. A lookup prefers the live row when its ``seq`` is newer than the
  events the current version was built from (the manifest's ``events_upto``);
- the service's **API keys** (salted hashes, :mod:`patron.governance.security`).

Backends: :mod:`patron.serving.online.embedded` (SQLite files in the serving folder, no
server) and :mod:`patron.serving.online.redis` (a Redis server, for several service
replicas). :func:`patron.serving.online.open_online_store` picks one from ``[serve]``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Columns of one logged event, in order (``seq`` first, given by the store).
EVENT_FIELDS = ("seq", "order_id", "customer_key", "ordered_at", "channel", "country", "store_id", "revenue", "gp2",
                "received_at", "key_id")
#: Columns of one API key row.
KEY_FIELDS = ("key_id", "salt", "key_hash", "role", "created_at", "revoked")
#: Kinds of identity look-up a version holds.
IDENTITY_KINDS = ("email", "phone", "loyalty_id")


def _instant(text: str) -> dt.datetime:
    """An ISO time as an aware instant (text without an offset is UTC)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class LiveRow:
    """A customer's document rescored after an event: the event's ``seq`` and the document (JSON text)."""

    seq: int
    doc: str


class StaleLiveRow(Exception):
    """Another event of the same customer was committed since their row was read: read again and retry."""


class OnlineStore(ABC):
    """The online store's primitive reads and writes; every method is safe to call from several threads."""

    #: The backend's name in ``[serve] online_store``.
    backend: str = ""

    # -- serving versions ------------------------------------------------------------------
    @abstractmethod
    def write_docs(self, version: str, batches: Iterable[Sequence[tuple[str, str]]]) -> int:
        """Store the customer documents of ``version``: batches of ``(customer_key, json_text)``; returns the count.

        Called once per version, before the pointer moves to it; nothing reads the version yet.
        """

    @abstractmethod
    def write_identities(self, version: str, batches: Iterable[Sequence[tuple[str, str, str]]]) -> int:
        """Store the identity look-ups of ``version``: batches of ``(kind, value, customer_key)``; returns the count.

        May run in another thread while :meth:`write_docs` of the same version runs; the look-ups
        may be readable only once :meth:`finish_version` has returned.
        """

    @abstractmethod
    def finish_version(self, version: str) -> None:
        """Make ``version``'s documents durable and ready to read (indexes, fsync); called after the writes."""

    @abstractmethod
    def doc(self, version: str, customer_key: str) -> str | None:
        """The document of ``customer_key`` in ``version``, None when the version does not know them."""

    @abstractmethod
    def identity(self, version: str, kind: str, value: str) -> list[str]:
        """The customer keys whose ``kind`` (e-mail, phone, loyalty id) is ``value`` in ``version``."""

    @abstractmethod
    def has_version(self, version: str) -> bool:
        """Whether ``version``'s documents are stored and finished."""

    @abstractmethod
    def drop_version(self, version: str) -> None:
        """Delete ``version``'s documents and look-ups (pruning; a version no reader uses)."""

    # -- live rows and the event log ---------------------------------------------------------
    @abstractmethod
    def live(self, customer_key: str) -> LiveRow | None:
        """The customer's live row, None when no event rescored them."""

    def record_event(self, event: dict[str, Any], *, expected_seq: int | None, doc: str) -> int:
        """Append ``event`` to the log and set its customer's live row to ``doc``, atomically; returns its ``seq``.

        ``event`` holds the :data:`EVENT_FIELDS` but ``seq``. Raises
        :class:`patron.errors.Conflict` when the log holds the order id already, and
        :class:`StaleLiveRow` when the customer's live row is no longer the one of
        ``expected_seq`` (None: no live row) that ``doc`` was computed from. Durable
        when it returns: the event survives a crash of the service. (:meth:`record_events`
        of one.)
        """
        outcome = self.record_events([(event, expected_seq, doc)])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @abstractmethod
    def set_live(self, customer_key: str, seq: int, doc: str) -> bool:
        """Replace the document of the customer's live row when it is still the row of ``seq``; whether it was.

        A rescored document goes back this way: no event is logged, and a row that a newer
        event replaced meanwhile, or that an erasure removed, is left as it is.
        """

    @abstractmethod
    def record_events(self, items: Sequence[tuple[dict[str, Any], int | None, str]]) -> list[int | Exception]:
        """:meth:`record_event` for each ``(event, expected_seq, doc)`` of ``items``, in order; per item its ``seq``,
        or the :class:`patron.errors.Conflict` / :class:`StaleLiveRow` that refused it (the others still land).

        Durable when it returns, with one disk flush for all of them where the backend can.
        """

    @abstractmethod
    def has_event(self, order_id: str) -> bool:
        """Whether the log holds an event of order ``order_id``."""

    @abstractmethod
    def events_after(self, seq: int, *, limit: int = 10_000) -> list[dict[str, Any]]:
        """The logged events with a ``seq`` above ``seq``, oldest first, at most ``limit``: dicts of
        :data:`EVENT_FIELDS`."""

    @abstractmethod
    def last_seq(self) -> int:
        """The ``seq`` of the latest logged event, 0 when none."""

    def latest_ordered_at(self, after_seq: int) -> str | None:
        """The latest ``ordered_at`` (ISO text) of the events logged after ``after_seq``, None when none.

        The live observation end counts every order posted since the version, as the batch's
        next run will. This default pages through the events; a backend may answer at once.
        """
        latest: str | None = None
        while events := self.events_after(after_seq):
            times = [str(e["ordered_at"]) for e in events if e.get("ordered_at")]
            if times:
                latest = max([*times, *([latest] if latest else [])], key=_instant)
            after_seq = int(events[-1]["seq"])
        return latest

    @abstractmethod
    def prune_live(self, upto_seq: int) -> int:
        """Delete the live rows whose ``seq`` is at most ``upto_seq`` (a current version holds them); returns how
        many."""

    # -- erasure -------------------------------------------------------------------------
    @abstractmethod
    def erase(self, customer_keys: Sequence[str], versions: Sequence[str]) -> int:
        """Remove the customers from ``versions`` (documents and look-ups), the live rows and the event log;
        returns the entries removed."""

    # -- API keys --------------------------------------------------------------------------
    @abstractmethod
    def api_keys(self) -> list[dict[str, Any]]:
        """Every API key row (dicts of :data:`KEY_FIELDS`), oldest first."""

    @abstractmethod
    def add_api_key(self, row: dict[str, Any]) -> None:
        """Store a new API key row."""

    @abstractmethod
    def revoke_api_key(self, key_id: str) -> bool:
        """Mark key ``key_id`` revoked; False when there is no such key."""

    def close(self) -> None:  # noqa: B027 (an optional hook)
        """Release connections."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
