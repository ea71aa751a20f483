"""The Redis online store: one Redis server shared by several service replicas.

Key layout (``P`` is ``[serve] redis_prefix``, ``V`` a serving version):

========================  ======  =============================================================
key                       type    holds
========================  ======  =============================================================
``P:v:V:docs``            hash    customer key -> document (JSON text)
``P:v:V:id:KIND``         zset    ``value NUL customer key``, all scored 0 (one per kind)
``P:v:V:of:KIND``         zset    ``customer key NUL value``: the reverse, for erasure
``P:v:V:kinds``           set     the identity kinds the version holds
``P:v:V:ready``           string  set by :meth:`RedisStore.finish_version`
``P:seq``                 string  the event counter (``INCR``)
``P:events``              stream  one entry per event, id ``<seq>-0``, field ``e``: the event's JSON
``P:orders``              hash    order id -> seq (refuses a repeated order id)
``P:live``                hash    customer key -> ``"<seq>\\n<document>"``
``P:live_seq``            zset    customer key scored by the live row's seq (staleness, pruning)
``P:cust:KEY:events``     hash    one customer's events: seq -> order id (for erasure)
``P:api_keys``            hash    key id -> the key's row as JSON
========================  ======  =============================================================

Why: a version is a handful of keys, so a document is one ``HGET`` (no key per customer),
a bulk load is pipelined multi-field ``HSET`` commands, and dropping a version is one
``UNLINK`` (freed in the background) without scanning the keyspace. Identities are
members of lexicographic sorted sets: a look-up is one ``ZRANGEBYLEX`` over the members
starting with ``value NUL``, and loading is plain multi-member ``ZADD`` (several customers
sharing a value need no read-modify-write, so no script runs during a load). A stream
whose ids are the seqs gives :meth:`RedisStore.events_after` as one ``XRANGE``; the live rows'
sorted set makes pruning a range query. Every multi-key change is one Lua script, which
Redis runs atomically.

Durability: Redis acknowledges an event only after the script committed it, so a crash
of the service never loses an acknowledged event. To survive a crash of the Redis
server itself (or of its machine) the server must run with ``appendonly yes`` and
``appendfsync always``: the append-only file is then written and fsynced before the
reply goes out (with ``everysec`` up to a second of events can be lost). If the reply
is lost on the way (the connection drops), redis-py sends the script again; the log then
answers :class:`patron.errors.Conflict` for the order it has committed, never twice.

Redis Cluster: the scripts touch several keys, so every key must live in one slot; a
prefix with a hash tag (``redis_prefix = "{patron}"``) does that.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any
from urllib.parse import urlsplit, urlunsplit

try:
    import redis
    from hiredis import pack_command
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis online store needs the redis client and hiredis: pip install 'patron[redis]'") from exc

from patron.errors import Conflict, NotConfigured
from patron.serving.online.base import EVENT_FIELDS, IDENTITY_KINDS, KEY_FIELDS, LiveRow, OnlineStore, StaleLiveRow

#: Fields per ``HSET`` command in a bulk load, and bytes sent per pipeline round trip.
FIELDS_PER_COMMAND = 1_000
BYTES_PER_ROUND_TRIP = 4 << 20
#: Pipelines of a bulk load in flight at once: one is packed while the server works through another.
BULK_WORKERS = 3
#: Entries handled by one call of a Lua script (a script blocks the server while it runs).
SCRIPT_CHUNK = 1_000

_CONFLICT, _STALE = -1, -2

_RECORD_EVENT = """
-- KEYS: orders, seq, events, live, live_seq, the customer's event index, event times
-- ARGV: order id, customer key, expected seq ('' = no live row), document, event JSON, ordered_at (epoch us)
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
local current = redis.call('ZSCORE', KEYS[5], ARGV[2])
if ARGV[3] == '' then
  if current then return -2 end
elseif (not current) or tonumber(current) ~= tonumber(ARGV[3]) then
  return -2
end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], seq .. '-0', 'e', ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], seq)
redis.call('HSET', KEYS[4], ARGV[2], seq .. '\\n' .. ARGV[4])
redis.call('ZADD', KEYS[5], seq, ARGV[2])
redis.call('HSET', KEYS[6], seq, ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[6], seq)
return seq
"""

_SET_LIVE = """
-- KEYS: live, live_seq; ARGV: customer key, seq, document. Only while the live row is still that seq's.
local current = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (not current) or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\n' .. ARGV[3])
return 1
"""

_ERASE_VERSION = """
-- KEYS: docs, then per kind its identity set and its reverse; ARGV: the customer keys
local removed = 0
for _, customer in ipairs(ARGV) do
  removed = removed + redis.call('HDEL', KEYS[1], customer)
  for k = 2, #KEYS, 2 do
    local mine = redis.call('ZRANGEBYLEX', KEYS[k + 1], '[' .. customer .. '\0', '(' .. customer .. '\1')
    for _, member in ipairs(mine) do
      local value = string.sub(member, #customer + 2)
      removed = removed + redis.call('ZREM', KEYS[k], value .. '\0' .. customer)
    end
    if #mine > 0 then redis.call('ZREM', KEYS[k + 1], unpack(mine)) end
  end
end
return removed
"""

_ERASE_EVENTS = """
-- KEYS: live, live_seq, events, orders, event times, then each customer's event index; ARGV: the customer keys
local removed = 0
for i, customer in ipairs(ARGV) do
  removed = removed + redis.call('HDEL', KEYS[1], customer)
  redis.call('ZREM', KEYS[2], customer)
  local index = KEYS[5 + i]
  local entries = redis.call('HGETALL', index)
  for j = 1, #entries, 2 do
    removed = removed + redis.call('XDEL', KEYS[3], entries[j] .. '-0')
    redis.call('HDEL', KEYS[4], entries[j + 1])
    redis.call('ZREM', KEYS[5], entries[j])
  end
  redis.call('DEL', index)
end
return removed
"""

_PRUNE_LIVE = """
-- KEYS: live, live_seq; ARGV: upto seq, batch size. One batch, atomically: a row replaced by a newer
-- event meanwhile has a higher score and is not in the range.
local customers = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #customers == 0 then return 0 end
redis.call('ZREM', KEYS[2], unpack(customers))
redis.call('HDEL', KEYS[1], unpack(customers))
return #customers
"""

_REVOKE_KEY = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local row = cjson.decode(current)
row['revoked'] = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(row))
return 1
"""


def _iso(value: Any) -> Any:
    """A time as ISO text in UTC (a naive time is taken as UTC; text passes through)."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    return value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class _Bulk:
    """The commands of a bulk load, packed by hiredis and sent a few megabytes at a time by a few threads.

    Packing here, not in redis-py's pipeline, saves its per-argument Python encoding (three
    quarters of the client's time in a load); the threads let the server work through one
    round trip while the next is packed. Only for commands whose order does not matter.
    """

    def __init__(self, client: redis.Redis, workers: int = BULK_WORKERS) -> None:
        self._pool = client.connection_pool
        self._workers = workers
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="patron-redis-bulk")
        self._running: deque[Future[None]] = deque()
        self._packed: list[bytes] = []
        self._size = 0

    def __enter__(self) -> _Bulk:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.flush()
                while self._running:
                    self._running.popleft().result()
        finally:
            for future in self._running:
                future.cancel()
            self._threads.shutdown(wait=True)

    def command(self, *args: str) -> None:
        packed = pack_command(args)
        self._packed.append(packed)
        self._size += len(packed)
        if self._size >= BYTES_PER_ROUND_TRIP:
            self.flush()

    def flush(self) -> None:
        if self._packed:
            self._running.append(self._threads.submit(self._send, self._packed))
            self._packed, self._size = [], 0
        while len(self._running) > self._workers:
            self._running.popleft().result()

    def _send(self, packed: list[bytes]) -> None:
        connection, errors = self._pool.get_connection(), []
        try:
            connection.send_packed_command(packed)
            for _ in packed:  # read every reply, so the connection goes back to the pool clean
                try:
                    connection.read_response()
                except redis.ResponseError as exc:
                    errors.append(exc)
        finally:
            self._pool.release(connection)
        if errors:
            raise errors[0]


class RedisStore(OnlineStore):
    """:class:`OnlineStore` on a Redis server at ``url``, every key under ``prefix``.

    One client with a connection pool serves all threads; the point reads a request makes
    (:meth:`doc`, :meth:`identity`, :meth:`live`) go over a connection of the calling
    thread's own, packed by hiredis, which halves their time against redis-py's full path.
    The server should run with ``appendonly yes`` and ``appendfsync always`` (see the
    module's notes on durability).
    """

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = "patron") -> None:
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self._r = redis.Redis.from_url(url, decode_responses=True)
        self._local = threading.local()
        self._readers: weakref.WeakSet[Any] = weakref.WeakSet()  # each thread's read connection
        self._guard = threading.Lock()
        self._record_event = self._r.register_script(_RECORD_EVENT)
        self._erase_version = self._r.register_script(_ERASE_VERSION)
        self._erase_events = self._r.register_script(_ERASE_EVENTS)
        self._prune_live = self._r.register_script(_PRUNE_LIVE)
        self._set_live = self._r.register_script(_SET_LIVE)
        self._revoke_key = self._r.register_script(_REVOKE_KEY)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    def close(self) -> None:
        with self._guard:
            for connection in list(self._readers):
                connection.disconnect()
            self._readers.clear()
        self._local = threading.local()
        self._r.close()
        self._r.connection_pool.disconnect()

    def _read(self, *args: str) -> Any:
        """The reply to one read command, sent on this thread's own connection.

        A connection dropped meanwhile (a server restart, an idle timeout) is opened again
        and the command sent once more: reads change nothing, so a repeat is harmless.
        """
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self._r.connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            self._local.connection = connection
            with self._guard:
                self._readers.add(connection)
        packed = [pack_command(args)]
        try:
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()

    # -- key names -------------------------------------------------------------------------
    def _v(self, version: str, part: str) -> str:
        return f"{self.prefix}:v:{version}:{part}"

    def _k(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _customer_events(self, customer_key: str) -> str:
        return f"{self.prefix}:cust:{customer_key}:events"

    def _kinds(self, version: str) -> list[str]:
        """Every identity kind ``version`` may hold (the known ones and any written)."""
        written = self._r.smembers(self._v(version, "kinds"))
        return list(dict.fromkeys([*IDENTITY_KINDS, *sorted(written)]))

    # -- serving versions ------------------------------------------------------------------
    def write_docs(self, version: str, batches: Iterable[Sequence[tuple[str, str]]]) -> int:
        key = self._v(version, "docs")
        count = 0
        with _Bulk(self._r) as bulk:
            for batch in batches:
                rows = iter(batch)
                while chunk := list(islice(rows, FIELDS_PER_COMMAND)):
                    args: list[str] = []
                    for customer_key, doc in chunk:
                        args.append(customer_key)
                        args.append(doc)
                    bulk.command("HSET", key, *args)
                    count += len(chunk)
        return count

    def write_identities(self, version: str, batches: Iterable[Sequence[tuple[str, str, str]]]) -> int:
        count = 0
        known: set[str] = set()
        with _Bulk(self._r) as bulk:
            for batch in batches:
                for chunk in _chunks(batch, FIELDS_PER_COMMAND):
                    by_kind: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
                    for kind, value, customer_key in chunk:
                        if "\0" in value or "\0" in customer_key:
                            raise ValueError(f"an identity value or customer key holds a NUL character: {value!r}")
                        forward, reverse = by_kind[kind]
                        forward += ("0", f"{value}\0{customer_key}")
                        reverse += ("0", f"{customer_key}\0{value}")
                    for kind, (forward, reverse) in by_kind.items():
                        if kind not in known:
                            known.add(kind)
                            self._r.sadd(self._v(version, "kinds"), kind)
                        bulk.command("ZADD", self._v(version, f"id:{kind}"), *forward)
                        bulk.command("ZADD", self._v(version, f"of:{kind}"), *reverse)
                    count += len(chunk)
        return count

    def finish_version(self, version: str) -> None:
        # With appendfsync always every write above is on disk already; the marker makes the version visible.
        self._r.set(self._v(version, "ready"), dt.datetime.now(dt.UTC).isoformat())

    def has_version(self, version: str) -> bool:
        return bool(self._r.exists(self._v(version, "ready")))

    def doc(self, version: str, customer_key: str) -> str | None:
        return self._read("HGET", f"{self.prefix}:v:{version}:docs", customer_key)

    def identity(self, version: str, kind: str, value: str) -> list[str]:
        found = self._read("ZRANGEBYLEX", f"{self.prefix}:v:{version}:id:{kind}", f"[{value}\0", f"({value}\1")
        return [member[len(value) + 1:] for member in found]

    def drop_version(self, version: str) -> None:
        self._r.unlink(self._v(version, "ready"))  # first: a version being dropped is no longer ready
        parts = ["docs", *(f"{part}:{kind}" for kind in self._kinds(version) for part in ("id", "of")), "kinds"]
        self._r.unlink(*(self._v(version, part) for part in parts))

    # -- live rows and the event log ---------------------------------------------------------
    def live(self, customer_key: str) -> LiveRow | None:
        found = self._read("HGET", f"{self.prefix}:live", customer_key)
        if found is None:
            return None
        seq, _, doc = found.partition("\n")
        return LiveRow(int(seq), doc)

    def set_live(self, customer_key: str, seq: int, doc: str) -> bool:
        return bool(int(self._set_live(keys=[self._k("live"), self._k("live_seq")],
                                       args=[customer_key, int(seq), doc])))

    def record_events(self, items: Sequence[tuple[dict[str, Any], int | None, str]]) -> list[int | Exception]:
        """Every item's script in one round trip (a pipeline; each script is atomic on its own)."""
        pipe = self._r.pipeline(transaction=False)
        for event, expected_seq, doc in items:
            keys, args = self._event_call(event, expected_seq, doc)
            self._record_event(keys=keys, args=args, client=pipe)
        outcomes: list[int | Exception] = []
        for (event, _, _), answer in zip(items, pipe.execute(), strict=True):
            seq = int(answer)
            if seq == _CONFLICT:
                outcomes.append(Conflict(f"order {str(event['order_id'])!r} is recorded already"))
            elif seq == _STALE:
                outcomes.append(StaleLiveRow(str(event["customer_key"])))
            else:
                outcomes.append(seq)
        return outcomes

    def _event_call(self, event: dict[str, Any], expected_seq: int | None, doc: str) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the record-event script for one event."""
        order_id, customer_key = str(event["order_id"]), str(event["customer_key"])
        values = {field: event.get(field) for field in EVENT_FIELDS[1:]}
        for field in ("ordered_at", "received_at"):
            values[field] = _iso(values[field])
        for field in ("revenue", "gp2"):
            if values[field] is not None:
                values[field] = float(values[field])
        keys = [self._k("orders"), self._k("seq"), self._k("events"), self._k("live"), self._k("live_seq"),
                self._customer_events(customer_key), self._k("event_times")]
        at = dt.datetime.fromisoformat(str(values["ordered_at"]).replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        args = [order_id, customer_key, "" if expected_seq is None else int(expected_seq), doc, _dumps(values),
                round(at.timestamp() * 1_000_000)]
        return keys, args

    def has_event(self, order_id: str) -> bool:
        return bool(self._r.hexists(self._k("orders"), order_id))

    def events_after(self, seq: int, *, limit: int = 10_000) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        start = f"{int(seq) + 1}-0" if seq >= 0 else "-"
        entries = self._r.xrange(self._k("events"), min=start, max="+", count=limit)
        out = []
        for entry_id, fields in entries:
            values = json.loads(fields["e"])
            values["seq"] = int(entry_id.partition("-")[0])
            out.append({field: values.get(field) for field in EVENT_FIELDS})
        return out

    def latest_ordered_at(self, after_seq: int) -> str | None:
        # the events by time, latest first (a sorted set): the first one logged after after_seq is the answer,
        # and events posted since the version are the latest ones, so it is found at once
        start, page = 0, 256
        while batch := self._r.zrevrange(self._k("event_times"), start, start + page - 1, withscores=True):
            for member, score in batch:
                if int(member) > after_seq:
                    when = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=int(score))
                    return when.isoformat()
            start += page
        return None

    def last_seq(self) -> int:
        latest = self._r.xrevrange(self._k("events"), max="+", min="-", count=1)
        return int(latest[0][0].partition("-")[0]) if latest else 0

    def prune_live(self, upto_seq: int) -> int:
        keys, removed = [self._k("live"), self._k("live_seq")], 0
        while True:
            done = int(self._prune_live(keys=keys, args=[int(upto_seq), SCRIPT_CHUNK]))
            removed += done
            if done < SCRIPT_CHUNK:
                return removed

    # -- erasure -------------------------------------------------------------------------
    def erase(self, customer_keys: Sequence[str], versions: Sequence[str]) -> int:
        customers = list(dict.fromkeys(customer_keys))
        if not customers:
            return 0
        removed = 0
        for version in versions:
            kinds = self._kinds(version)
            keys = [self._v(version, "docs"), *(self._v(version, f"{p}:{k}") for k in kinds for p in ("id", "of"))]
            for chunk in _chunks(customers, SCRIPT_CHUNK):
                removed += int(self._erase_version(keys=keys, args=list(chunk)))
        fixed = [self._k("live"), self._k("live_seq"), self._k("events"), self._k("orders"), self._k("event_times")]
        for chunk in _chunks(customers, SCRIPT_CHUNK):
            keys = fixed + [self._customer_events(c) for c in chunk]
            removed += int(self._erase_events(keys=keys, args=list(chunk)))
        return removed

    # -- API keys --------------------------------------------------------------------------
    def api_keys(self) -> list[dict[str, Any]]:
        rows = []
        for text in self._r.hvals(self._k("api_keys")):
            stored = json.loads(text)
            row = {field: stored.get(field) for field in KEY_FIELDS}
            created = dt.datetime.fromisoformat(row["created_at"])
            row["created_at"] = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
            row["revoked"] = bool(row["revoked"])
            rows.append(row)
        return sorted(rows, key=lambda r: (r["created_at"], r["key_id"]))

    def add_api_key(self, row: dict[str, Any]) -> None:
        values = {field: row[field] for field in KEY_FIELDS}
        values["created_at"] = _iso(values["created_at"])
        values["revoked"] = bool(values["revoked"])
        if not self._r.hsetnx(self._k("api_keys"), str(values["key_id"]), _dumps(values)):
            raise Conflict(f"API key {values['key_id']!r} exists already")

    def revoke_api_key(self, key_id: str) -> bool:
        return bool(self._revoke_key(keys=[self._k("api_keys")], args=[key_id]))


def _answering(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with a Redis server that does not answer reported as what it is, not as a bug: ``NotConfigured``
    (the service's 503; one line on the command line) naming the server and the setting."""

    @functools.wraps(method)
    def call(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise NotConfigured(f"the Redis online store at {_shown(self.url)} does not answer ({exc}); start it, or "
                                "check [serve] redis_url in patron.toml", status_code=503) from exc

    return call


def _shown(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"
                                            + (f":{parts.port}" if parts.port else "")))


for _name in sorted(OnlineStore.__abstractmethods__ | {"latest_ordered_at", "record_event"}):
    setattr(RedisStore, _name, _answering(getattr(RedisStore, _name)))
