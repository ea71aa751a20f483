"""Connect to the warehouse: one Ibis backend, with the few hooks where engines differ.

Every transform in patron is an engine-neutral Ibis expression; this module is the only
place that knows whether it runs on an embedded DuckDB file or on Spark (local, a
cluster or Databricks). The ``Warehouse`` base runs the shared steps and its two
subclasses fill the hooks (connect, transaction, table swap), as splink's database APIs do.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.errors import EngineError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TableLike = ir.Table | pd.DataFrame | pa.Table


def check_table_name(name: str) -> str:
    """A table name safe to use on every engine: letters, digits and underscores."""
    if not _NAME.match(name):
        raise EngineError(f"invalid table name {name!r}: use letters, digits and underscores")
    return name


#: The command that writes each table the pipeline makes, for "run X first" messages.
WRITTEN_BY: dict[str, str] = {
    "orders": "patron ingest", "order_lines": "patron ingest", "identity_map": "patron resolve",
    "order_keys": "patron resolve", "order_values": "patron rfm", "rfm": "patron rfm",
    "rfm_histogram": "patron rfm", "car": "patron features", "backtests": "patron backtest",
    "models": "patron fit", "scores": "patron score", "segments": "patron segments",
}


class Warehouse:
    """A connected warehouse: read, write and swap tables through one Ibis backend."""

    engine: str = ""

    def __init__(self, con: BaseBackend, settings: Settings) -> None:
        self.con = con
        self.settings = settings

    # -- reading -----------------------------------------------------------------
    def list_tables(self) -> list[str]:
        return sorted(t for t in self.con.list_tables() if not t.startswith("ibis_"))

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def table(self, name: str) -> ir.Table:
        if not self.has_table(name):
            step = WRITTEN_BY.get(name)
            hint = f"; run `{step}` first" if step else ""
            raise EngineError(f"table {name} does not exist in the warehouse{hint}")
        return self.con.table(name)

    def input_table(self, name: str) -> ir.Table:
        """Contract table ``name``, or an empty one of its schema when it was never loaded.

        Only ``orders`` and ``order_lines`` are required; a step reading an optional table
        (customers, returns...) reads it empty rather than failing.
        """
        from patron.contract import contract_table

        if self.has_table(name):
            return self.table(name)
        schema = contract_table(name).schema()
        return ibis.memtable(schema.to_pyarrow().empty_table(), schema=schema)

    def to_pandas(self, expr: ir.Expr) -> pd.DataFrame:
        """Run ``expr`` and return a DataFrame with timestamps in UTC on every engine."""
        try:
            frame = self.con.to_pandas(expr)
        except Exception as exc:  # engine errors come in many classes; keep the query
            raise EngineError(f"query failed: {exc}", query=_sql(expr)) from exc
        if isinstance(frame, pd.DataFrame):
            for column in frame.columns:
                series = frame[column]
                naive = pd.api.types.is_datetime64_any_dtype(series) and series.dt.tz is None
                if naive and expr.schema()[column].is_timestamp():  # dates stay naive
                    frame[column] = series.dt.tz_localize("UTC")
        return frame

    def count(self, expr: ir.Table) -> int:
        return int(self.con.execute(expr.count()))

    # -- writing -----------------------------------------------------------------
    def write(self, name: str, obj: TableLike, *, mode: str = "replace") -> None:
        """Write ``obj`` to table ``name``: ``replace`` swaps it in whole, ``append`` adds rows.

        A replaced table is built beside the old one and swapped in, so a failure
        leaves the old table as it was and an expression may read the table it replaces.
        """
        check_table_name(name)
        obj = self._engine_object(obj)
        if mode == "append" and self.has_table(name):
            self._insert(name, obj)
            return
        if mode not in ("append", "replace"):
            raise EngineError(f"unknown write mode {mode!r}", table=name)
        staging = f"{name}__staging_{uuid.uuid4().hex[:8]}"
        try:
            self.con.create_table(staging, obj)
            staging = self._with_patron_types(staging)
            self._swap(staging, name)
        except Exception as exc:
            if self.has_table(staging):
                self.con.drop_table(staging)
            raise EngineError(f"could not write table: {exc}", table=name) from exc

    def _engine_object(self, obj: TableLike) -> TableLike:
        """``obj`` in the form the engine loads best; DuckDB takes frames and Arrow as they are."""
        return patron_types(obj) if isinstance(obj, ir.Table) else obj

    def _with_patron_types(self, name: str) -> str:
        """The table holding ``name``'s rows in patron's column types; DuckDB's are already."""
        return name

    @contextmanager
    def scratch(self, obj: TableLike) -> Iterator[ir.Table]:
        """``obj`` as a table of this session only, dropped on exit.

        For inputs a query reads once (scoring's per-row values): a temporary table is
        kept in memory and out of the catalog, so it costs no write to the warehouse file.
        """
        name = f"patron_scratch_{uuid.uuid4().hex[:12]}"
        self.con.create_table(name, self._engine_object(obj), temp=True)
        try:
            yield self.con.table(name)
        finally:
            self.con.drop_table(name, force=True)

    def splink_api(self) -> Any:
        """Splink's database API over this warehouse's own connection or session."""
        raise EngineError(f"no Splink backend for engine {self.engine!r}")

    def drop(self, name: str) -> None:
        if self.has_table(name):
            self.con.drop_table(check_table_name(name))

    def _insert(self, name: str, obj: TableLike) -> None:
        try:
            self.con.insert(name, obj)
        except Exception as exc:
            raise EngineError(f"could not append rows: {exc}", table=name) from exc

    def _swap(self, staging: str, name: str) -> None:
        if self.has_table(name):
            self.con.drop_table(name)
        self.con.rename_table(staging, name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside succeed together or not at all, where the engine allows it."""
        yield

    def close(self) -> None:
        disconnect = getattr(self.con, "disconnect", None)
        if disconnect is not None:
            disconnect()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    """The embedded default: one DuckDB file, with real transactions."""

    engine = "duckdb"
    _depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:  # already inside one: the outer transaction decides
            yield
            return
        raw = self.con.con
        raw.begin()
        self._depth += 1
        try:
            yield
        except BaseException:
            raw.rollback()
            raise
        else:
            raw.commit()
        finally:
            self._depth -= 1

    def splink_api(self) -> Any:
        from splink import DuckDBAPI

        return DuckDBAPI(connection=self.con.con)

    def _swap(self, staging: str, name: str) -> None:
        with self.transaction():
            if self.has_table(name):
                self.con.drop_table(name)
            # names were checked by check_table_name; DuckDB's Ibis backend has no rename
            self.con.con.execute(f'ALTER TABLE "{staging}" RENAME TO "{name}"')


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

    @contextmanager
    def scratch(self, obj: TableLike) -> Iterator[ir.Table]:
        """``obj`` as a temporary view of this session (Spark has no temporary tables), dropped on exit."""
        table = self._engine_object(obj)
        try:
            yield table
        finally:
            if not isinstance(obj, ir.Table):
                self.con._session.catalog.dropTempView(table.get_name())


def patron_types(table: ir.Table) -> ir.Table:
    """``table`` with engine-chosen numeric types cast to patron's: float64 and int64 only.

    Engines type literals their own way: DuckDB makes ``12`` an int8, Spark makes it an
    int32 and types literal arithmetic in decimals (``1 - x/y`` can come out
    ``decimal(16,16)``, which cannot even hold 1.0). Every stored table has one schema,
    whatever the engine.
    """
    casts: dict[str, str] = {}
    for name, dtype in table.schema().items():
        if dtype.is_decimal() or dtype.is_float32():
            casts[name] = "float64"
        elif dtype.is_integer() and not dtype.is_int64():
            casts[name] = "int64"
    return table.cast(casts) if casts else table


def _spark_timestamps_are_instants() -> None:
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
        session = spark_session(settings)
        database = check_table_name(settings.spark.database)
        session.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        session.catalog.setCurrentDatabase(database)
        _spark_timestamps_are_instants()
        return SparkWarehouse(ibis.pyspark.connect(session), settings)
    raise EngineError(f"unknown engine {settings.engine!r}")


def _sql(expr: ir.Expr) -> str | None:
    try:
        return str(ibis.to_sql(expr))
    except Exception:  # unbound or backend-specific expressions have no generic SQL
        return None
