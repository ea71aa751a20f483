"""The warehouse every step reads and writes: one Ibis backend and the hooks where engines differ.

The ``Warehouse`` base runs what every engine shares; ``engine.duckdb`` and ``engine.spark``
fill the hooks (transaction, table swap, row replacement, Splink), as splink's database APIs do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from patron.config import Settings
from patron.errors import EngineError
from patron.tables import WRITTEN_BY

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TableLike = ir.Table | pd.DataFrame | pa.Table


def check_table_name(name: str) -> str:
    """A table name safe to use on every engine: letters, digits and underscores."""
    if not _NAME.match(name):
        raise EngineError(f"invalid table name {name!r}: use letters, digits and underscores")
    return name


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
        return int(self.scalar(expr.count()))

    def scalar(self, expr: ir.Scalar) -> Any:
        """The value of a scalar expression (a max, a count, an any), run on the engine."""
        try:
            return self.con.execute(expr)
        except Exception as exc:  # engine errors come in many classes; keep the query
            raise EngineError(f"query failed: {exc}", query=_sql(expr)) from exc

    def batches(self, expr: ir.Table, *, chunk_size: int = 1_000_000) -> Iterator[pa.RecordBatch]:
        """``expr``'s rows as Arrow record batches, streamed rather than held in memory at once."""
        try:
            yield from self.con.to_pyarrow_batches(expr, chunk_size=chunk_size)
        except Exception as exc:
            raise EngineError(f"query failed: {exc}", query=_sql(expr)) from exc

    def to_parquet_file(self, expr: ir.Table, path: Path) -> int:
        """Write ``expr``'s rows to the one Parquet file ``path`` (streamed, typed as ``expr``'s schema); returns
        how many rows. An engine may write the file itself."""
        import pyarrow.parquet as pq

        schema = expr.schema().to_pyarrow()
        count = 0
        with pq.ParquetWriter(path, schema) as writer:
            for batch in self.batches(expr):
                table = pa.Table.from_batches([batch]).cast(schema)
                writer.write_table(table)
                count += table.num_rows
        return count

    def read_catalog_table(self, qualified_name: str) -> pa.Table:
        """A table of the engine's catalog that patron did not write (``db.table`` or ``table``), as Arrow."""
        *database, table = qualified_name.split(".")
        try:
            return self.con.to_pyarrow(self.con.table(table, database=".".join(database) or None))
        except Exception as exc:  # engines raise many classes for a missing table
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"cannot read table {qualified_name}: {reason}", table=qualified_name) from exc

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

    def create(self, name: str, obj: TableLike) -> ir.Table:
        """Create table ``name`` from ``obj`` directly, without staging: for scratch tables nothing reads yet."""
        check_table_name(name)
        try:
            return self.con.create_table(name, self._engine_object(obj))
        except Exception as exc:  # engine errors come in many classes
            raise EngineError(f"could not write a scratch table: {exc}", table=name) from exc

    def replace_rows(self, name: str, column: str, value: Any, rows: TableLike) -> None:
        """Replace the rows of table ``name`` whose ``column`` equals ``value`` by ``rows``.

        The general way rewrites the table without those rows; an engine that can delete in
        place (DuckDB) overrides it.
        """
        table = self.table(name)
        kept = table.filter(table[column] != value)
        new = rows if isinstance(rows, ir.Table) else ibis.memtable(rows)
        self.write(name, kept.union(new.select(*table.columns).cast(table.schema())))

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
        """Release the connection (a step's warehouse is closed when the step ends)."""
        disconnect = getattr(self.con, "disconnect", None)
        if disconnect is not None:
            disconnect()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def _sql(expr: ir.Expr) -> str | None:
    try:
        return str(ibis.to_sql(expr))
    except Exception:  # unbound or backend-specific expressions have no generic SQL
        return None
