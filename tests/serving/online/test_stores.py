"""The online store's contract, on every backend: embedded SQLite files, and Redis against a real redis-server
(started once per run by ``tests.redis_server``)."""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from patron.errors import Conflict, NotConfigured
from patron.serving.online import EmbeddedStore, OnlineStore
from patron.serving.online.base import EVENT_FIELDS, KEY_FIELDS, LiveRow, StaleLiveRow

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[OnlineStore]:
    """A store of each backend; a Redis one with a prefix of its own, so tests never see each other's keys."""
    if request.param == "embedded":
        with EmbeddedStore(tmp_path / "serving") as embedded:
            yield embedded
        return
    from patron.serving.online.redis import RedisStore

    with RedisStore(request.getfixturevalue("redis_server"), prefix=f"test-{uuid.uuid4().hex[:12]}") as s:
        yield s


@pytest.fixture
def redis_store(store: OnlineStore) -> Any:
    """The Redis store alone (tests of its connection handling)."""
    if store.backend != "redis":
        pytest.skip("Redis only")
    return store


def event(order_id: str, customer_key: str, **extra: Any) -> dict[str, Any]:
    values = {"order_id": order_id, "customer_key": customer_key, "ordered_at": T0, "channel": "online",
              "country": "DE", "store_id": None, "revenue": 12.5, "gp2": 4.25,
              "received_at": "2024-03-01T12:00:01+00:00", "key_id": "k1"}
    return values | extra


def doc_of(customer_key: str, n: int = 0) -> str:
    return json.dumps({"customer_key": customer_key, "n": n})


def test_docs_per_version(store: OnlineStore) -> None:
    assert store.write_docs("v1", [[("c1", doc_of("c1")), ("c2", doc_of("c2"))], [("c3", doc_of("c3"))]]) == 3
    assert store.write_docs("v2", iter([[("c1", doc_of("c1", 2))]])) == 1
    assert not store.has_version("v1")
    store.finish_version("v1")
    store.finish_version("v2")
    assert store.has_version("v1") and store.has_version("v2") and not store.has_version("v3")
    assert store.doc("v1", "c1") == doc_of("c1")
    assert store.doc("v2", "c1") == doc_of("c1", 2)
    assert store.doc("v2", "c2") is None and store.doc("v3", "c1") is None
    store.drop_version("v1")
    assert not store.has_version("v1") and store.doc("v1", "c1") is None and store.identity("v1", "email", "x") == []
    assert store.doc("v2", "c1") == doc_of("c1", 2) and store.has_version("v2")


def test_bulk_docs_span_round_trips(store: OnlineStore) -> None:
    big = "x" * 1500
    batches = [[(f"c{b}-{i}", big) for i in range(2500)] for b in range(4)]
    assert store.write_docs("v1", batches) == 10_000
    assert store.doc("v1", "c3-2499") == big and store.doc("v1", "c0-0") == big


def test_identities(store: OnlineStore) -> None:
    rows = [("email", "a@x.com", "c1"), ("email", "a@x.com", "c2"), ("phone", "+491", "c1"),
            ("loyalty_id", "L/1", "c3"), ("email", "b@x.com", "c3")]
    assert store.write_identities("v1", [rows[:3], rows[3:], [("email", "a@x.com", "c4"), ("email", "a@x.com", "c1")]])\
        == 7
    assert store.write_identities("v2", [[("email", "a@x.com", "c9")]]) == 1
    store.finish_version("v1")  # look-ups are readable once the version is finished
    store.finish_version("v2")
    assert store.identity("v1", "email", "a@x.com") == ["c1", "c2", "c4"]
    assert store.identity("v1", "phone", "+491") == ["c1"]
    assert store.identity("v1", "loyalty_id", "L/1") == ["c3"]
    assert store.identity("v1", "phone", "a@x.com") == []
    assert store.identity("v2", "email", "a@x.com") == ["c9"]
    store.drop_version("v1")
    assert store.identity("v1", "email", "a@x.com") == [] and store.identity("v2", "email", "a@x.com") == ["c9"]


def test_identity_values_that_prefix_others(store: OnlineStore) -> None:
    store.write_identities("v1", [[("email", "a@x", "c1"), ("email", "a@x.com", "c2"), ("email", "a@x", "c0"),
                                   ("phone", "é+49 ☎", "c3"), ("email", "", "c4")]])
    store.finish_version("v1")
    assert store.identity("v1", "email", "a@x") == ["c0", "c1"]
    assert store.identity("v1", "email", "a@x.com") == ["c2"]
    assert store.identity("v1", "email", "a@") == [] and store.identity("v1", "email", "") == ["c4"]
    assert store.identity("v1", "phone", "é+49 ☎") == ["c3"]
    with pytest.raises(ValueError, match="NUL"):
        store.write_identities("v1", [[("email", "a\0b", "c1")]])


def test_record_event_and_live_rows(store: OnlineStore) -> None:
    assert store.last_seq() == 0 and store.live("c1") is None and not store.has_event("o1")
    assert store.record_event(event("o1", "c1"), expected_seq=None, doc=doc_of("c1", 1)) == 1
    assert store.record_event(event("o2", "c2"), expected_seq=None, doc=doc_of("c2", 1)) == 2
    assert store.live("c1") == LiveRow(1, doc_of("c1", 1))
    with pytest.raises(Conflict, match="'o1' is recorded already"):
        store.record_event(event("o1", "c1"), expected_seq=1, doc="{}")
    with pytest.raises(StaleLiveRow):
        store.record_event(event("o3", "c1"), expected_seq=None, doc="{}")
    with pytest.raises(StaleLiveRow):
        store.record_event(event("o3", "c1"), expected_seq=2, doc="{}")
    with pytest.raises(StaleLiveRow):
        store.record_event(event("o3", "c3"), expected_seq=1, doc="{}")
    assert store.record_event(event("o3", "c1"), expected_seq=1, doc=doc_of("c1", 3)) == 3
    assert store.live("c1") == LiveRow(3, doc_of("c1", 3))
    assert store.last_seq() == 3 and store.has_event("o3") and not store.has_event("o4")
    first = store.events_after(0)[0]
    assert tuple(first) == EVENT_FIELDS
    assert first == {"seq": 1, "order_id": "o1", "customer_key": "c1", "ordered_at": "2024-03-01T12:00:00+00:00",
                     "channel": "online", "country": "DE", "store_id": None, "revenue": 12.5, "gp2": 4.25,
                     "received_at": "2024-03-01T12:00:01+00:00", "key_id": "k1"}


def test_record_events_lands_each_and_refuses_each_on_its_own(store: OnlineStore) -> None:
    store.record_event(event("o1", "c1"), expected_seq=None, doc="a")
    outcomes = store.record_events([(event("o2", "c2"), None, "b"), (event("o1", "c3"), None, "x"),
                                    (event("o3", "c1"), None, "stale"), (event("o4", "c1"), 1, "c"),
                                    (event("o4", "c4"), None, "again")])
    assert outcomes[0] == 2 and outcomes[3] == 3
    assert isinstance(outcomes[1], Conflict) and isinstance(outcomes[4], Conflict)
    assert isinstance(outcomes[2], StaleLiveRow)
    assert store.live("c1") == LiveRow(3, "c") and store.live("c2") == LiveRow(2, "b") and store.live("c3") is None
    assert [e["order_id"] for e in store.events_after(0)] == ["o1", "o2", "o4"]


def test_set_live_replaces_only_the_row_it_was_read_from(store: OnlineStore) -> None:
    store.record_event(event("o1", "c1"), expected_seq=None, doc="pending")
    assert store.set_live("c1", 1, "rescored\nrow") and store.live("c1") == LiveRow(1, "rescored\nrow")
    store.record_event(event("o2", "c1"), expected_seq=1, doc="newer")
    assert not store.set_live("c1", 1, "late") and store.live("c1") == LiveRow(2, "newer")
    assert not store.set_live("c9", 1, "nobody") and store.live("c9") is None  # never makes a row
    store.erase(["c1"], [])
    assert not store.set_live("c1", 2, "erased") and store.live("c1") is None
    assert store.events_after(0) == []


def test_live_doc_may_hold_newlines(store: OnlineStore) -> None:
    store.record_event(event("o1", "c1"), expected_seq=None, doc='{\n"a": 1\n}')
    assert store.live("c1") == LiveRow(1, '{\n"a": 1\n}')


def test_events_after_pages(store: OnlineStore) -> None:
    seq = None
    for i in range(25):
        seq = store.record_event(event(f"o{i}", "c1", revenue=i), expected_seq=seq, doc="{}")
    pages, after = [], 0
    while page := store.events_after(after, limit=10):
        pages.append([e["seq"] for e in page])
        after = page[-1]["seq"]
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert [e["revenue"] for e in store.events_after(20)] == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert store.events_after(25) == [] and store.events_after(3, limit=0) == []


def test_prune_live_keeps_newer_rows(store: OnlineStore) -> None:
    store.record_event(event("o1", "c1"), expected_seq=None, doc="a")
    store.record_event(event("o2", "c2"), expected_seq=None, doc="b")
    store.record_event(event("o3", "c1"), expected_seq=1, doc="c")
    store.record_event(event("o4", "c3"), expected_seq=None, doc="d")
    assert store.prune_live(3) == 2  # c2 (seq 2) and c1 (seq 3)
    assert store.live("c1") is None and store.live("c2") is None and store.live("c3") == LiveRow(4, "d")
    assert store.prune_live(3) == 0
    assert store.record_event(event("o5", "c1"), expected_seq=None, doc="e") == 5  # pruned: no live row now
    assert len(store.events_after(0)) == 5  # pruning live rows keeps the log


def test_prune_live_many(store: OnlineStore) -> None:
    for i in range(1100):
        store.record_event(event(f"o{i}", f"c{i}"), expected_seq=None, doc="{}")
    assert store.prune_live(1050) == 1050
    assert store.live("c1049") is None and store.live("c1050") == LiveRow(1051, "{}")


def test_erase_removes_one_customer_only(store: OnlineStore) -> None:
    for version in ("v1", "v2"):
        store.write_docs(version, [[("c1", "d1"), ("c2", "d2")]])
        store.write_identities(version, [[("email", "shared@x", "c1"), ("email", "shared@x", "c2"),
                                          ("phone", "+49", "c1"), ("loyalty_id", "L1", "c2")]])
        store.finish_version(version)
    store.record_event(event("o1", "c1"), expected_seq=None, doc="a")
    store.record_event(event("o2", "c2"), expected_seq=None, doc="b")
    store.record_event(event("o3", "c1"), expected_seq=1, doc="c")
    # per version: doc + 2 identities; then the live row and 2 events
    assert store.erase(["c1", "c1", "nobody"], ["v1", "v2", "v9"]) == 2 * 3 + 1 + 2
    for version in ("v1", "v2"):
        assert store.doc(version, "c1") is None and store.doc(version, "c2") == "d2"
        assert store.identity(version, "email", "shared@x") == ["c2"]
        assert store.identity(version, "phone", "+49") == []
        assert store.identity(version, "loyalty_id", "L1") == ["c2"]
    assert store.live("c1") is None and store.live("c2") == LiveRow(2, "b")
    assert [e["order_id"] for e in store.events_after(0)] == ["o2"]
    assert not store.has_event("o1") and not store.has_event("o3") and store.has_event("o2")
    assert store.record_event(event("o1", "c1"), expected_seq=None, doc="x") == 4  # seqs are never reused
    assert store.erase([], ["v1"]) == 0


def test_api_keys(store: OnlineStore) -> None:
    later = {"key_id": "b", "salt": "s2", "key_hash": "h2", "role": "admin", "created_at": T0 + dt.timedelta(days=1),
             "revoked": False}
    earlier = {"key_id": "a", "salt": "s/1", "key_hash": "h1", "role": "reader",
               "created_at": dt.datetime(2024, 3, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
               "revoked": 0}
    assert store.api_keys() == []
    store.add_api_key(later)
    store.add_api_key(earlier)
    with pytest.raises(Conflict):
        store.add_api_key(earlier)
    rows = store.api_keys()
    assert [r["key_id"] for r in rows] == ["a", "b"] and tuple(rows[0]) == KEY_FIELDS
    assert rows[0]["created_at"] == dt.datetime(2024, 3, 1, 11, 0, tzinfo=dt.UTC)
    assert rows[0]["created_at"].tzinfo is not None and rows[0]["revoked"] is False
    assert rows[1] == later
    assert store.revoke_api_key("a") and not store.revoke_api_key("zzz")
    rows = store.api_keys()
    assert [r["revoked"] for r in rows] == [True, False] and rows[0]["salt"] == "s/1"


def test_concurrent_events(store: OnlineStore) -> None:
    customers, threads, per_thread = ["c1", "c2", "c3", "c4"], 16, 25
    errors: list[BaseException] = []

    def work(t: int) -> None:
        rng = random.Random(t)
        try:
            for i in range(per_thread):
                customer = rng.choice(customers)
                while True:
                    row = store.live(customer)
                    try:
                        store.record_event(event(f"o{t}-{i}", customer), expected_seq=None if row is None else row.seq,
                                           doc=json.dumps({"after": None if row is None else row.seq}))
                        break
                    except StaleLiveRow:
                        continue
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    n = threads * per_thread
    events = store.events_after(0, limit=n + 10)
    assert [e["seq"] for e in events] == list(range(1, n + 1)) and store.last_seq() == n
    assert sorted(e["order_id"] for e in events) == sorted(f"o{t}-{i}" for t in range(threads)
                                                           for i in range(per_thread))
    for customer in customers:
        mine = [e["seq"] for e in events if e["customer_key"] == customer]
        row = store.live(customer)
        assert row is not None and row.seq == max(mine)
        # each live row was computed from the customer's previous event: the chain has no gaps
        previous = [None, *mine[:-1]]
        assert json.loads(row.doc) == {"after": previous[-1]}


def test_bulk_load_reports_server_errors(redis_store: Any) -> None:
    store = redis_store
    import redis

    store._r.set(f"{store.prefix}:v:bad:docs", "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.write_docs("bad", [[("c1", "d1")], [("c2", "d2")]])
    assert store.write_docs("good", [[("c1", "d1")]]) == 1  # the pool's connections are still usable
    assert store.doc("good", "c1") == "d1"


def test_reads_survive_a_dropped_connection(redis_store: Any) -> None:
    store = redis_store
    store.write_docs("v1", [[("c1", "d1")]])
    assert store.doc("v1", "c1") == "d1"
    killed = store._r.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert store.doc("v1", "c1") == "d1" and store.identity("v1", "email", "x") == [] and store.live("c1") is None


def test_reads_from_many_threads(store: OnlineStore) -> None:
    store.write_docs("v1", [[(f"c{i}", f"d{i}") for i in range(200)]])
    wrong: list[str] = []

    def read(t: int) -> None:
        for i in range(t, 200, 8):
            if store.doc("v1", f"c{i}") != f"d{i}":
                wrong.append(f"c{i}")

    workers = [threading.Thread(target=read, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert wrong == []


def test_latest_ordered_at_after_a_seq(store: OnlineStore) -> None:
    """The live observation end counts the orders logged since the version: the latest order time after a seq."""
    assert store.latest_ordered_at(0) is None
    times = [T0 + dt.timedelta(days=d) for d in (3, 1, 5, 2)]
    for n, when in enumerate(times, start=1):
        store.record_event(event(f"o{n}", f"c{n}", ordered_at=when), expected_seq=None, doc=doc_of(f"c{n}"))

    def latest(after: int) -> dt.datetime | None:
        text = store.latest_ordered_at(after)
        return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert latest(0) == T0 + dt.timedelta(days=5)
    assert latest(3) == T0 + dt.timedelta(days=2)  # only the 4th event is after seq 3
    assert latest(4) is None
    store.erase(["c3"], [])
    assert latest(0) == T0 + dt.timedelta(days=3)  # an erased order no longer moves the end


def test_a_redis_server_that_does_not_answer_is_named_not_a_bug() -> None:
    """A down server (or a wrong [serve] redis_url) is NotConfigured (503; one line on the command line), with the
    URL shown without its password."""
    from patron.serving.online.redis import RedisStore

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0") as down:
        for call in (down.api_keys, lambda: down.doc("v1", "c1"), down.last_seq):
            with pytest.raises(NotConfigured, match=f"127.0.0.1:{port}.*does not answer") as caught:
                call()
            assert "hunter2" not in str(caught.value) and "redis_url" in str(caught.value)
