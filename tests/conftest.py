"""Shared fixtures: a warehouse on each engine, one Spark session for the whole run."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ibis
import pytest

from patron import pipeline
from patron.config import Settings, SparkSettings
from patron.engine import Warehouse, connect
from tests.redis_server import redis_server  # noqa: F401 (a fixture for every test module)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # xdist gives its workers COLUMNS=80; the command line's consoles must see what a piped run sees (no COLUMNS)
    os.environ.pop("COLUMNS", None)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """xdist groups for ``make test`` (``pytest -n 2 --dist loadgroup``): every test on local Spark in one group,
    run by one worker on the run's one Spark session; every other test with the rest of its module (module
    fixtures built once, tests that build on the one before kept in order)."""
    for item in items:
        spark = item.get_closest_marker("spark") or "spark_home" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group("spark" if spark else item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder of the run's one local Spark session (warehouse and metastore)."""
    home = tmp_path_factory.mktemp("spark")
    yield home
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def settings_for(engine: str, folder: Path, spark_home: Path | None = None) -> Settings:
    """Settings of a throw-away project on ``engine``; Spark tests get a database of their own."""
    if engine == "duckdb":
        return Settings(project_dir=folder, engine="duckdb")
    assert spark_home is not None
    spark = SparkSettings(master="local[2]", database=f"t_{uuid.uuid4().hex[:10]}",
                          warehouse_dir="spark-warehouse", shuffle_partitions=2, driver_memory="2g")
    return replace(Settings(project_dir=spark_home, engine="spark"), spark=spark)


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per engine."""
    return request.param


@pytest.fixture
def warehouse(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """An empty warehouse on the test's engine."""
    home = request.getfixturevalue("spark_home") if engine_name == "spark" else None
    settings = settings_for(engine_name, tmp_path, home)
    wh = connect(settings)
    yield wh
    if engine_name == "spark":
        wh.con._session.sql(f"DROP DATABASE IF EXISTS {settings.spark.database} CASCADE")
    else:
        wh.close()


@pytest.fixture(scope="session")
def scored_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """generate → ingest → validate → resolve → summarise → fit → score, once per run."""
    root = tmp_path_factory.mktemp("service_base")
    pipeline.generate(1000, root / "data", seed=11, fmt="parquet")
    settings = Settings(project_dir=root / "project", engine="duckdb")
    pipeline.ingest(settings, [root / "data"])
    pipeline.require_quality(pipeline.validate(settings))
    pipeline.resolve(settings)
    pipeline.summarise(settings)
    pipeline.fit(settings)
    pipeline.score(settings)
    pipeline.segments(settings)
    return settings.warehouse_path


@pytest.fixture(scope="session")
def profiled_project(scored_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scored project with ``car`` as of the scores' date, segments rebuilt on it and a backtest: what
    the profiler and the reports read (read only: copy it to change it)."""
    folder = tmp_path_factory.mktemp("profiled") / "project"
    shutil.copytree(scored_project.parent, folder)
    settings = Settings(project_dir=folder, engine="duckdb")
    pipeline.features(settings)
    pipeline.segments(settings)
    pipeline.backtest(settings)
    (folder / "patron.toml").write_text('engine = "duckdb"\n', encoding="utf-8")
    return folder


def warehouse_copy(scored_project: Path, folder: Path) -> ibis.BaseBackend:
    """A copy of the scored project's warehouse file in ``folder`` (other tests share the original), opened as a
    plain Ibis backend."""
    copy = folder / "patron.duckdb"
    shutil.copy(scored_project, copy)
    return ibis.duckdb.connect(str(copy))
