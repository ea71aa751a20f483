"""patron publish: a complete version (tables, documents, look-ups, manifest) switched to at once, older ones pruned;
erasure reaches every kept version and the online store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from patron import pipeline
from patron.config import ServeSettings, Settings
from patron.engine import connect, parquet_snapshot
from patron.insights import dashboard
from patron.serving.layout import current_version, read_manifest, table_path, versions
from patron.serving.online import open_online_store
from patron.serving.publish import CUSTOMER_RECORDS, PUBLISHED, identity_rows, lookup_value, prefetched, views
from patron.serving.reader import stored_doc
from patron.tables import IDENTITY_MAP


@pytest.fixture(scope="module")
def project(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("publish")
    settings = replace(Settings(project_dir=folder, engine="duckdb"), serve=ServeSettings(keep=2))
    shutil.copy(scored_project, settings.warehouse_path)
    return settings


@pytest.fixture(scope="module")
def first(project: Settings) -> pipeline.PublishResult:
    return pipeline.publish(project)


def test_a_version_holds_the_tables_documents_and_manifest(project: Settings, first: pipeline.PublishResult) -> None:
    manifest = first.manifest
    root = project.serving_dir
    assert current_version(root) == manifest.version and read_manifest(root, manifest.version) == manifest
    with connect(project) as warehouse:
        customers = warehouse.count(warehouse.table("rfm"))
        scores = warehouse.to_pandas(warehouse.table("scores")).set_index("customer_key")
        values = warehouse.to_pandas(warehouse.table("order_values").select("customer_key", "order_id"))
        for name in PUBLISHED:
            if warehouse.has_table(name):
                assert manifest.tables[name] == warehouse.count(warehouse.table(name)), name
                assert pq.read_metadata(table_path(root, manifest.version, name)).num_rows == manifest.tables[name]
    assert manifest.customers == customers and manifest.events_upto == 0 and manifest.model_id
    assert {"orders", "monthly", "customers"} <= set(manifest.tables)
    key = str(scores.index[7])
    with open_online_store(project) as store:
        doc = stored_doc(store, manifest, key) or {}
    assert doc["scores"]["clv_12m"] == pytest.approx(scores.loc[key, "clv_12m"], rel=1e-12)
    assert sorted(o["order_id"] for o in doc["orders"]) == sorted(values[values.customer_key == key].order_id)
    times = [o["ordered_at"] for o in doc["orders"]]
    assert times == sorted(times, reverse=True) and times[0].endswith("Z")


def test_the_pages_summaries_are_published_and_give_the_warehouses_numbers(project: Settings,
                                                                          first: pipeline.PublishResult) -> None:
    manifest = first.manifest
    assert {"customer_months", "cohort_activity", "active_customers_monthly"} <= set(manifest.tables)
    files = {name: table_path(project.serving_dir, manifest.version, name) for name in manifest.tables}
    with connect(project) as warehouse, parquet_snapshot(project, files) as snapshot:
        published, direct = dashboard.sources(snapshot), dashboard.sources(warehouse)
        assert "customer_months" in snapshot.list_tables() and "customer_months" not in warehouse.list_tables()
        selection = dashboard.select(direct)
        pd.testing.assert_frame_equal(dashboard.tiles(published, selection), dashboard.tiles(direct, selection))
        pd.testing.assert_frame_equal(dashboard.cohort_retention(published, selection),
                                      dashboard.cohort_retention(direct, selection))


def test_identity_lookups_are_normalised(project: Settings, first: pipeline.PublishResult) -> None:
    with connect(project) as warehouse:
        identity, customers = warehouse.table("identity_map"), warehouse.table("customers")
        row = warehouse.to_pandas(identity.join(customers.filter(customers.email.notnull()),
                                                ["source", "customer_id"]).limit(1)).iloc[0]
    shouted = f"  {row['email'].upper()} "
    with open_online_store(project) as store:
        found = store.identity(first.manifest.version, "email", lookup_value(project, "email", shouted) or "")
    assert row["customer_key"] in found


def test_lookups_from_resolution_equal_parsing_every_record_again(project: Settings,
                                                                   first: pipeline.PublishResult) -> None:
    root, version = project.serving_dir, first.manifest.version
    with duckdb.connect() as con:
        views(con, root, version, [IDENTITY_MAP, CUSTOMER_RECORDS])
        resolved = {row for batch in identity_rows(con, project) for row in batch}
        path = str(table_path(root, version, IDENTITY_MAP))
        assert {"match_email", "match_phone", "match_loyalty_id"} <= set(pq.read_schema(path).names)
        con.execute(f"CREATE OR REPLACE VIEW {IDENTITY_MAP} AS SELECT * EXCLUDE (match_email, match_phone, "
                    f"match_loyalty_id) FROM read_parquet('{path}')")  # a warehouse resolved before the columns
        parsed = {row for batch in identity_rows(con, project) for row in batch}
    assert resolved == parsed
    assert {kind for kind, _, _ in resolved} == {"email", "phone", "loyalty_id"}
    assert any(kind == "phone" and value.startswith("+") for kind, value, _ in resolved)


def test_lookups_come_distinct_and_in_key_order_and_hashed_values_stay_as_stored(project: Settings,
                                                                                 tmp_path: Path) -> None:
    customers = tmp_path / "customers.parquet"
    identities = tmp_path / "identity_map.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM (VALUES ('s', '1', 'h:b', '', 'h:l1'), ('s', '2', 'h:a', 'h:p', NULL), "
                    f"('t', '9', 'h:a', NULL, NULL)) AS v(source, customer_id, email, phone, loyalty_id)) "
                    f"TO '{customers}'")
        con.execute(f"COPY (SELECT * FROM (VALUES ('s', '1', 'k2'), ('s', '2', 'k1'), ('t', '9', 'k1')) "
                    f"AS v(source, customer_id, customer_key)) TO '{identities}'")
        con.execute(f"CREATE VIEW {CUSTOMER_RECORDS} AS SELECT * FROM read_parquet('{customers}')")
        con.execute(f"CREATE VIEW {IDENTITY_MAP} AS SELECT * FROM read_parquet('{identities}')")
        hashed = replace(project, privacy=replace(project.privacy, hash_personal_data=True))
        rows = [row for batch in identity_rows(con, hashed, batch_rows=2) for row in batch]
    assert rows == [("email", "h:a", "k1"), ("email", "h:b", "k2"), ("loyalty_id", "h:l1", "k2"),
                    ("phone", "h:p", "k1")]


def test_a_new_version_switches_and_old_ones_are_pruned(project: Settings, first: pipeline.PublishResult) -> None:
    second = pipeline.publish(project)
    third = pipeline.publish(project)
    root = project.serving_dir
    assert current_version(root) == third.manifest.version
    assert versions(root) == [second.manifest.version, third.manifest.version]  # keep = 2
    assert third.pruned == (first.manifest.version,)
    with open_online_store(project) as store:
        assert not store.has_version(first.manifest.version) and store.has_version(second.manifest.version)
    assert not (root / "versions" / first.manifest.version).exists()


def test_a_failed_publish_leaves_the_current_version(project: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project.serving_dir
    before, kept = current_version(root), versions(root)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("patron.serving.publish.write_manifest", broken)
    with pytest.raises(OSError, match="disk full"):
        pipeline.publish(project)
    assert current_version(root) == before and versions(root) == kept
    assert sorted(p.name for p in (root / "versions").iterdir()) == kept  # no half-written folder left


def test_erasure_reaches_every_kept_version_and_the_online_store(project: Settings) -> None:
    root = project.serving_dir
    with connect(project) as warehouse:
        rfm = warehouse.table("rfm")
        key = str(warehouse.to_pandas(rfm.filter(rfm.frequency >= 1).order_by("customer_key").limit(1))
                  .customer_key.iloc[0])
        records = warehouse.to_pandas(warehouse.table("identity_map").filter(lambda t: t.customer_key == key))
    kept = versions(root)
    assert len(kept) == 2
    result = pipeline.erase(project, [key], reason="test ticket")
    assert result.serving is not None and result.serving.online_entries >= 2 and result.serving.rows > 0
    with open_online_store(project) as store:
        for version in kept:
            assert store.doc(version, key) is None
            for name in ("scores", "rfm", "segments", "orders", "identity_map"):
                path = table_path(root, version, name)
                if path.exists():
                    assert key not in set(pq.read_table(path, columns=["customer_key"])["customer_key"].to_pylist())
            people = pq.read_table(table_path(root, version, "customers"), columns=["source", "customer_id"])
            pairs = set(zip(people["source"].to_pylist(), people["customer_id"].to_pylist(), strict=True))
            assert not pairs & set(zip(records.source, records.customer_id, strict=True))


def test_prefetched_batches_arrive_in_order_and_carry_the_producers_error() -> None:
    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetched(failing()))
    taken = prefetched(iter(range(10_000)), ahead=1)
    assert next(taken) == 0
    taken.close()  # a consumer that stops early stops the producer; nothing hangs
