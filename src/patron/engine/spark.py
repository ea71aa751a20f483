"""Spark as the engine: a local session for tests, the active session on a cluster or Databricks."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.engine.base import TableLike, Warehouse, patron_types
from patron.errors import EngineError


class SparkWarehouse(Warehouse):
    """Spark: tables in the session's catalog (Hive metastore locally, Unity/Hive on a cluster).

    Spark tables have no multi-table transactions; a replaced table is still built
    beside the old one and swapped in, so a failed step leaves the old table whole.
    """

    engine = "spark"

    def splink_api(self) -> Any:
        from splink import SparkAPI

        session = self.con._session
        context = session.sparkContext
        if context.getCheckpointDir() is None:  # Splink checkpoints intermediate tables
            context.setCheckpointDir(str(self.settings.spark_warehouse_dir.resolve() / "_checkpoints"))
        return SparkAPI(spark_session=session)

    def _engine_object(self, obj: TableLike) -> TableLike:
        """Frames and Arrow tables go to Spark through Arrow, which keeps NULL text as NULL.

        (Through pandas, Spark may store a missing text value as the string 'NaN'.)
        """
        if isinstance(obj, ir.Table):
            return patron_types(obj)
        arrow = pa.Table.from_pandas(obj, preserve_index=False) if isinstance(obj, pd.DataFrame) else obj
        view = f"patron_load_{uuid.uuid4().hex[:12]}"
        session = self.con._session
        session.createDataFrame(arrow).createOrReplaceTempView(view)
        return self.con.table(view)

    def _with_patron_types(self, name: str) -> str:
        """Rewrite a just-written table whose columns Spark typed its own way (decimals, int32).

        Ibis believes ``1 - x / y`` is a float64 and casts nothing; Spark decides at run
        time, so the stored schema is read back and corrected once, only when it differs.
        """
        written = self.con.table(name)
        typed = patron_types(written)
        if typed is written:
            return name
        fixed = f"{name}_t"
        self.con.create_table(fixed, typed)
        self.con.drop_table(name)
        return fixed

    def close(self) -> None:
        """Nothing to release: the Spark session is shared by the process (a notebook, a test run)."""

    @contextmanager
    def scratch(self, obj: TableLike) -> Iterator[ir.Table]:
        """``obj`` as a temporary view of this session (Spark has no temporary tables), dropped on exit."""
        table = self._engine_object(obj)
        try:
            yield table
        finally:
            if not isinstance(obj, ir.Table):
                self.con._session.catalog.dropTempView(table.get_name())


def spark_timestamps_are_instants() -> None:
    """Have Ibis read Spark's ``TIMESTAMP`` as ``timestamp('UTC')``, as DuckDB's ``TIMESTAMPTZ`` reads.

    Spark's ``TIMESTAMP`` is an instant (its local-time twin is ``TIMESTAMP_NTZ``) and
    patron's sessions run in UTC, but Ibis 12 maps both to a naive timestamp, so a
    table written as ``timestamp('UTC')`` read back without its zone. Writes are unchanged.
    """
    from ibis.backends.pyspark import datatypes

    def instant(nullable: bool = True) -> Any:
        return ibis.expr.datatypes.Timestamp(timezone="UTC", nullable=nullable)

    datatypes._from_pyspark_dtypes[datatypes.pt.TimestampType] = instant


def spark_session(settings: Settings) -> Any:
    """The Spark session patron uses: the active one (Databricks) or a configured local one.

    ``getOrCreate`` returns the session already running in this process, so a test run
    or a notebook shares one session.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the Spark engine needs the 'spark' extra: pip install 'patron[spark]'") from exc

    active = SparkSession.getActiveSession()
    if active is not None or not settings.spark.master:
        if active is None:
            raise EngineError("spark.master is empty and no Spark session is active")
        return active
    # local workers must run this interpreter, which has patron's packages (Python UDFs)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warehouse_dir = settings.spark_warehouse_dir.resolve()
    metastore = warehouse_dir.parent / "metastore_db"
    builder = (
        SparkSession.builder.master(settings.spark.master)
        .appName("patron")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config("spark.sql.warehouse.dir", str(warehouse_dir))
        .config("spark.sql.catalogImplementation", "hive")
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore};create=true")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse_dir.parent}")
    )
    jar = _splink_udf_jar()
    if jar is not None:  # Splink's string-similarity functions (Jaro-Winkler...) on Spark
        builder = builder.config("spark.jars", jar)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _splink_udf_jar() -> str | None:
    """The jar of Splink's Scala similarity functions, shipped inside the splink package."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:  # pragma: no cover - splink is a dependency, but keep Spark usable without it
        return None
    return similarity_jar_location()
