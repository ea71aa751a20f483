"""One customer rescored in milliseconds: the batch's expressions compiled to DuckDB SQL once, then only run.

An event rescores its customer with the batch's own expressions
(:func:`patron.scoring.live.customer_summary`, :func:`~patron.scoring.live.customer_inputs`,
:func:`~patron.scoring.live.customer_scores`), so the live row equals a batch rescore of the
same orders. Building and compiling those Ibis expressions takes tens of milliseconds; their
SQL does not change between customers. So a :class:`Rescorer` compiles each once, over
placeholder tables (the customer's orders, their new ``rfm`` row, the purchase model's row,
the spend coefficients, the clock's month table), prepares it (``PREPARE``: DuckDB would
plan the 6 KB scores query again on every run, 10-15 ms), and per event only refills those
temporary tables with the customer's rows and executes, on an in-memory DuckDB connection
of its own.

A rescorer runs one call at a time (a DuckDB connection runs one query at a time); the
serving version keeps one per process (:meth:`patron.serving.reader.ServingVersion.rescorer`),
and concurrent requests reach it in batches (:mod:`patron.serving.coalesce`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from typing import Any

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.sql.datatypes import DuckDBType

from patron.config import Settings
from patron.scoring.live import customer_inputs, customer_scores, customer_summary
from patron.scoring.model_store import FittedValueModels
from patron.transforms.days import utc_timestamp
from patron.transforms.seasonality import POOLED, Seasonality

_ORDERS, _RFM, _ROWS, _SPEND, _MONTHS = "_p_orders", "_p_rfm", "_p_rows", "_p_spend", "_p_months"
#: The orders of one customer, as the summary reads them (amounts in the reporting currency).
HISTORY_SCHEMA = pa.schema([
    ("customer_key", pa.string()), ("ordered_at", pa.timestamp("us", tz="UTC")), ("revenue", pa.float64()),
    ("gp2", pa.float64()), ("country", pa.string()), ("discount", pa.float64()), ("gross_revenue", pa.float64()),
])


def history(key: str, orders: list[dict[str, Any]], market: str | None) -> pa.Table:
    """The customer's orders (dicts with ``ordered_at``, ``revenue``, ``gp2``, ``country``, ``discount``,
    ``gross_revenue``) as a table of :data:`HISTORY_SCHEMA`; an order without a country is in ``market``."""
    rows = []
    for o in orders:
        if not o.get("ordered_at"):
            continue
        revenue = float(o.get("revenue") or 0.0)
        discount = float(o.get("discount") or 0.0)
        gross = o.get("gross_revenue")
        rows.append({"customer_key": key, "ordered_at": utc_timestamp(o["ordered_at"]).to_pydatetime(),
                     "revenue": revenue, "gp2": float(o["gp2"]) if o.get("gp2") is not None else revenue,
                     "country": o.get("country") or market or POOLED, "discount": discount,
                     "gross_revenue": float(gross) if gross is not None else revenue + discount})
    return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)


class Rescorer:
    """Rescore one customer at a time on an in-memory DuckDB connection, with SQL compiled once per shape."""

    def __init__(self, settings: Settings, models: FittedValueModels, clock: Seasonality | None) -> None:
        self.settings = settings
        self.models = models
        self.clock = clock
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET python_enable_replacements = false")
        # a statement is prepared once and run on other rows: no plan may fold in the statistics of the rows
        # present when it was prepared (an empty input table would make the whole query a constant empty result)
        self.con.execute("SET disabled_optimizers = 'statistics_propagation'")
        self.con.execute("SET threads = 1")  # one customer's rows: handing them between threads costs more
        self._sql: dict[tuple[Any, ...], tuple[str, pa.Schema]] = {}
        self._prepared: dict[str, str] = {}
        self._tables: dict[str, tuple[str, ...]] = {}
        self._names = itertools.count()
        self._lock = threading.Lock()

    def rescore_many(self, customers: list[tuple[str, list[dict[str, Any]], str | None]],
                     end: dt.date) -> tuple[pa.Table, pa.Table]:
        """The ``rfm`` and ``scores`` rows of several customers, each given as ``(key, orders, market)``, as of
        ``end``: one run of each query for all of them (the cost of a run hardly grows with its rows).

        One call at a time (the events' and the lookups' batches may lead in two threads at once):
        the connection runs one query at a time.
        """
        with self._lock:
            return self._rescore_many(customers, end)

    def _rescore_many(self, customers: list[tuple[str, list[dict[str, Any]], str | None]],
                      end: dt.date) -> tuple[pa.Table, pa.Table]:
        table = pa.concat_tables([history(key, orders, market) for key, orders, market in customers])
        summary, summary_schema = self._compiled(("rfm", end), lambda: customer_summary(
            _placeholder(_ORDERS, HISTORY_SCHEMA), self.settings, end, clock=self.clock))
        rfm_rows = self._run(summary, summary_schema, {_ORDERS: table})
        rows, spend = customer_inputs(self.models, self.settings, rfm_rows, end, clock=self.clock)
        scores, scores_schema = self._compiled(
            ("scores", end, rfm_rows.schema, rows.schema, spend.schema), lambda: customer_scores(
                _placeholder(_RFM, rfm_rows.schema), _placeholder(_ROWS, rows.schema),
                _placeholder(_SPEND, spend.schema), self.models, self.settings, end))
        scored = self._run(scores, scores_schema, {_RFM: rfm_rows, _ROWS: rows, _SPEND: spend})
        if "scored_at" in scored.column_names:  # the compiled literal is the compile time: now instead
            at = pa.array([dt.datetime.now(dt.UTC)] * scored.num_rows, type=scored.schema.field("scored_at").type)
            scored = scored.set_column(scored.column_names.index("scored_at"), "scored_at", at)
        return rfm_rows, scored

    def close(self) -> None:
        self.con.close()

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], ir.Table]) -> tuple[str, pa.Schema]:
        """The SQL and the result schema of the expression ``build`` makes (compiled once per key); its input
        tables exist from then on."""
        found = self._sql.get(key)
        if found is None:
            expr = months_placeholder(build())
            for table in _placeholders(expr):  # the inputs as tables of their own
                self._input(table.name, table.schema.to_pyarrow())
            found = self._sql[key] = (str(ibis.to_sql(expr, dialect="duckdb")), expr.schema().to_pyarrow())
        return found

    def _input(self, name: str, schema: pa.Schema) -> None:
        """Create temporary table ``name`` of ``schema`` unless made already.

        A new table changes the catalogue, and DuckDB then binds and plans every statement
        prepared before it again on each run (30 ms for the summary): so the prepared
        statements are dropped and prepared afresh on their next run.
        """
        if name in self._tables:
            return
        if name == _MONTHS and self.clock is not None:
            self.con.register("_p_months_source", pa.Table.from_pandas(self.clock.month_table(), preserve_index=False))
            self.con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM _p_months_source')
            self.con.unregister("_p_months_source")
        else:
            types = ibis.Schema.from_pyarrow(schema).items()
            self.con.execute(f'CREATE TEMP TABLE "{name}" ('
                             + ", ".join(f'"{c}" {DuckDBType.to_string(t)}' for c, t in types) + ")")
        self._tables[name] = tuple(schema.names)
        for statement in self._prepared.values():
            self.con.execute(f'DEALLOCATE "{statement}"')
        self._prepared.clear()

    def _run(self, sql: str, schema: pa.Schema, tables: dict[str, pa.Table]) -> pa.Table:
        """Refill the input tables with ``tables``' rows, then execute ``sql``, prepared on its first run."""
        for name, table in tables.items():
            columns = self._tables[name]
            self.con.execute(f'DELETE FROM "{name}"')
            values = [table.column(c).to_pylist() for c in columns]
            if table.num_rows:  # one statement for all rows (executemany runs one statement per row)
                row = f"({', '.join('?' * len(columns))})"
                self.con.execute(f'INSERT INTO "{name}" VALUES {", ".join([row] * table.num_rows)}',
                                 [v for r in zip(*values, strict=True) for v in r])
        statement = self._prepared.get(sql)
        if statement is None:
            statement = self._prepared[sql] = f"_p_statement_{next(self._names)}"
            self.con.execute(f'PREPARE "{statement}" AS {sql}')
        return self.con.execute(f'EXECUTE "{statement}"').to_arrow_table().cast(schema)


def _placeholders(expr: ir.Table) -> list[ops.UnboundTable]:
    return list(dict.fromkeys(expr.op().find(ops.UnboundTable)))


def months_placeholder(expr: ir.Table) -> ir.Table:
    """``expr`` with the clock's month table (its one memory table, if any) read from placeholder ``_p_months``."""
    memory = list(dict.fromkeys(expr.op().find(ops.InMemoryTable)))
    if not memory:
        return expr
    if len(memory) > 1:
        raise ValueError(f"expected one memory table (the clock's months), found {len(memory)}")
    return expr.op().replace({memory[0]: _placeholder(_MONTHS, memory[0].schema).op()}).to_expr()


def _placeholder(name: str, schema: pa.Schema | Any) -> ir.Table:
    """An unbound table ``name`` of ``schema`` (Arrow or Ibis) to compile an expression over."""
    return ibis.table(ibis.Schema.from_pyarrow(schema) if isinstance(schema, pa.Schema) else schema, name=name)
