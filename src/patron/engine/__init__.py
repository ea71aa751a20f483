"""Connect to the warehouse: the only package that knows which engine runs the queries.

Every transform in patron is an engine-neutral Ibis expression over a ``Warehouse``;
``connect`` opens an embedded DuckDB file or a Spark catalog database (local, a cluster
or Databricks) and returns the subclass that fills the engine's hooks.
"""

from __future__ import annotations

from pathlib import Path

import ibis

from patron.config import Settings
from patron.engine.base import TableLike, Warehouse, check_table_name, patron_types
from patron.engine.duckdb import DuckDBWarehouse, storage_files
from patron.errors import EngineError

__all__ = [
    "DuckDBWarehouse", "TableLike", "Warehouse", "check_table_name", "connect", "parquet_snapshot", "patron_types",
    "reset_storage",
]


def connect(settings: Settings) -> Warehouse:
    """Open the warehouse ``settings`` name: a DuckDB file or a Spark catalog database."""
    if settings.engine == "duckdb":
        path = settings.warehouse_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = ibis.duckdb.connect(str(path))
        except Exception as exc:
            raise EngineError(f"cannot open DuckDB warehouse {path}: {exc}") from exc
        return DuckDBWarehouse(con, settings)
    if settings.engine == "spark":
        from patron.engine.spark import SparkWarehouse, spark_session, spark_timestamps_are_instants

        session = spark_session(settings)
        database = check_table_name(settings.spark.database)
        session.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        session.catalog.setCurrentDatabase(database)
        spark_timestamps_are_instants()
        return SparkWarehouse(ibis.pyspark.connect(session), settings)
    raise EngineError(f"unknown engine {settings.engine!r}")


def parquet_snapshot(settings: Settings, files: dict[str, Path]) -> DuckDBWarehouse:
    """A read-only warehouse in memory whose tables are views over Parquet ``files`` (name -> path).

    The service reads a published serving version through it: the same expressions as the
    batch, on DuckDB, whatever engine wrote the files.
    """
    con = ibis.duckdb.connect()
    for name, path in files.items():
        check_table_name(name)
        location = str(path).replace("'", "''")
        con.con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet(\'{location}\')')
    return DuckDBWarehouse(con, settings)


def reset_storage(settings: Settings) -> None:
    """Remove an embedded warehouse's files so a project starts from nothing (Spark catalogs are kept)."""
    if settings.engine == "duckdb":
        for path in storage_files(settings):
            path.unlink(missing_ok=True)
