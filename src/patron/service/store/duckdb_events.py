"""An order recorded on DuckDB in milliseconds: the batch's expressions as statements prepared once.

Recording an order runs the batch's own expressions
(:func:`~patron.transforms.events.event_order_values`,
:func:`~patron.transforms.rfm.rfm_summary`, :func:`~patron.scoring.predictions.row_inputs` and
:func:`~patron.scoring.batch.scores_expression`) on the customer's rows alone. Each expression
is compiled to SQL once, over placeholder tables, and that SQL runs unchanged:

- the placeholders of values computed per event (the posted order, the purchase model's
  row, the spend coefficients) are temporary tables of the writer connection, refilled
  by each event (they live in memory and write no log);
- the placeholders of the customer's stored rows (their orders, their new ``rfm`` row)
  are common table expressions over the indexed tables, filtered on the customer of the
  posted order (``customer_key IN (SELECT customer_key FROM _patron_event)``: DuckDB
  answers it from the index, the key being known when the statement runs);
- each write is one ``INSERT ... SELECT`` of that SQL, after a ``DELETE`` of the
  customer's old row; the ``rfm`` and ``scores`` inserts return the rows they wrote
  (``RETURNING``), so nothing is read twice.

Each statement is prepared once (``PREPARE``) and then only executed: planning the
6 KB scores query took 5-12 ms per event, and DuckDB's Python API prepares a statement
again on every ``execute``. So every input of a statement is in a table: ``EXECUTE``
takes no parameters from Python, and DuckDB folds a session variable
(``getvariable``) into the plan when it prepares the statement.

On a seasonal clock (``rfm`` has a ``market`` column and the warehouse holds the clock,
:func:`~patron.transforms.seasonality.stored_seasonality`) the summary and the scores are
those of that clock, as in the batch. The clock's month table, a memory table in
:func:`~patron.transforms.rfm.rfm_summary`, is a placeholder too: a temporary table filled
when the clock is read (at the first event and after each :meth:`EventWriter.refresh`), so
the compiled statements depend only on the clock's markets, which key them.

One transaction per event, on the writer's own cursor of the warehouse's DuckDB connection
(:meth:`patron.engine.DuckDBWarehouse.cursor`: its temporary tables and prepared statements
are its own). When it fails, the writer forgets its temporary tables and statements (the
rollback may have dropped the tables) and builds them on the next event.

The workflow around it (the order id checked, the observation end) is the store's one
:meth:`patron.service.store.base.ServiceStore.record_order`; the maths is
:mod:`patron.scoring.live`, here compiled to SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.sql.datatypes import DuckDBType

from patron.config import Settings
from patron.engine import DuckDBWarehouse
from patron.scoring.live import customer_inputs, customer_scores, customer_summary
from patron.scoring.model_store import FittedValueModels
from patron.service.store.base import ORDER_EVENTS_SCHEMA, event_row
from patron.tables import ORDER_EVENTS, ORDER_VALUES, RFM, SCORES
from patron.transforms.events import event_order_values
from patron.transforms.seasonality import Seasonality, stored_seasonality

# placeholder names: temporary tables refilled per event, or common table expressions over stored rows
_EVENT, _ROWS, _SPEND = "_patron_event", "_patron_rows", "_patron_spend"
_ORDERS, _RFM = "_patron_orders", "_patron_rfm"
#: placeholder of the clock's month table (a temporary table filled when the clock is read)
_MONTHS = "_patron_months"
#: The event's customer, as a statement reads it (the key is in the event's row).
THE_CUSTOMER = f"customer_key IN (SELECT customer_key FROM {_EVENT})"


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier (names here come from the catalog or constants, never from requests)."""
    return '"' + name.replace('"', '""') + '"'


def customer_rows(placeholder: str, table: str) -> str:
    """A common table expression naming ``placeholder`` the rows of ``table`` of the event's customer.

    Materialised and with ``OFFSET 0``, so that the query's own filters stay out of it:
    DuckDB would push them onto the scan, which then reads the whole table instead of
    the index (the summary took 68 ms at a million customers, 1.4 ms with the index).
    """
    return f"{quote(placeholder)} AS MATERIALIZED ({customer_sql(table, ['*'])} OFFSET 0)"


def insert_sql(table: str, select: str, *, ctes: Sequence[str] = (), returning: Sequence[str] = ()) -> str:
    """``INSERT INTO table BY NAME`` the rows of ``select`` (run after ``ctes``), returning the named columns."""
    sql = f"INSERT INTO {quote(table)} BY NAME {select_sql(select, ctes=ctes)}"
    return sql + (f" RETURNING {', '.join(quote(c) for c in returning)}" if returning else "")


def customer_sql(table: str, columns: Sequence[str]) -> str:
    """The ``columns`` (``*``: all) of the event's customer's rows of ``table``, answered from its index.

    DuckDB uses the index only while this filter is the scan's sole filter.
    """
    names = ", ".join(c if c == "*" else quote(c) for c in columns)
    return f"SELECT {names} FROM {quote(table)} WHERE {THE_CUSTOMER}"


def select_sql(select: str, *, ctes: Sequence[str] = ()) -> str:
    """``select`` as a subquery after the common table expressions ``ctes``."""
    return (f"WITH {', '.join(ctes)} " if ctes else "") + f"SELECT * FROM ({select}) AS _patron_result"


@dataclass(frozen=True)
class Compiled:
    """An expression's DuckDB SQL and the Arrow schema of its result."""

    sql: str
    schema: pa.Schema


class EventWriter:
    """Records orders on a cursor of a DuckDB warehouse with statements prepared once (caller holds the lock)."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse
        self.cursor = warehouse.cursor()
        self._sql: dict[tuple[Any, ...], Compiled] = {}
        self._prepared: dict[str, str] = {}
        self._inputs: dict[str, tuple[str, ...]] = {}
        self._tables: set[str] | None = None
        self._values_schema: Any = None
        self._clock: Seasonality | None = None
        self._clock_read = False
        self._months_of: Seasonality | None = None  # the clock whose month table _MONTHS holds
        self._names = itertools.count()
        self._created = False  # whether the running transaction created a table

    def record(self, models: FittedValueModels, settings: Settings, event: dict[str, Any], *, key_id: str,
               end: dt.date) -> tuple[pa.Table, pa.Table]:
        """Append order ``event``, rebuild its customer's ``rfm`` and ``scores`` rows as of ``end``; one transaction.

        Returns the two rows as stored.
        """
        try:
            with self._transaction():
                self._append(event, key_id, settings)
                rfm_row = self._summary(end, settings)
                scored = self._score(models, settings, rfm_row, end)
        except BaseException:
            self.forget()
            raise
        if self._created:
            # DuckDB plans a statement prepared in the transaction that created a table it
            # reads again on every run (3 ms for the scores): prepare them afresh next time
            self._deallocate()
            self._created = False
        return rfm_row, scored

    def close(self) -> None:
        """Close the writer's cursor (its temporary tables and statements go with it)."""
        self.cursor.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction on the writer's cursor: committed when the block ends, rolled back when it fails."""
        self.cursor.begin()
        try:
            yield
        except BaseException:
            self.cursor.rollback()
            raise
        self.cursor.commit()

    def forget(self) -> None:
        """Drop the prepared statements and what is known of the catalogue; the next event builds them again."""
        self._deallocate()
        self._created = False
        self._inputs.clear()
        self._months_of = None
        self.refresh()

    def refresh(self) -> None:
        """Read the catalogue again on the next event (another writer may have created or replaced tables)."""
        self._tables = None
        self._values_schema = None
        self._clock_read = False

    def _deallocate(self) -> None:
        for name in self._prepared.values():
            with contextlib.suppress(duckdb.Error):
                self.cursor.execute(f"DEALLOCATE {quote(name)}")
        self._prepared.clear()

    # -- the three steps -----------------------------------------------------------------
    def _append(self, event: dict[str, Any], key_id: str, settings: Settings) -> None:
        """The event's row of ``order_events``, and of ``order_values`` through :func:`event_order_values`."""
        row = event_row(event, key_id)
        self._fill(_EVENT, ORDER_EVENTS_SCHEMA, row)
        if ORDER_EVENTS in self.tables():
            self._run(insert_sql(ORDER_EVENTS, f"SELECT * FROM {quote(_EVENT)}"))
        else:  # the first posted order: the table takes the types of the event's row
            self.cursor.execute(f"CREATE TABLE {quote(ORDER_EVENTS)} AS SELECT * FROM {quote(_EVENT)}")
            self.tables().add(ORDER_EVENTS)
            self._created = True
        schema, currency = self.values_schema(), settings.reporting_currency
        values = self._compiled(("values", currency, schema), lambda: event_order_values(
            _placeholder(_EVENT, ORDER_EVENTS_SCHEMA), schema, reporting_currency=currency))
        self._run(insert_sql(ORDER_VALUES, values.sql))

    def _summary(self, end: dt.date, settings: Settings) -> pa.Table:
        """The customer's new ``rfm`` row: :func:`customer_summary` over their orders, new order included."""
        schema, unit_days, clock = self.values_schema(), settings.model.unit_days, self.clock()
        markets = None if clock is None else (clock.market, tuple(clock.markets))
        summary = self._compiled(("rfm", end, unit_days, schema, markets), lambda: months_placeholder(
            customer_summary(_placeholder(_ORDERS, schema), settings, end, clock=clock)))
        if clock is not None and self._months_of is not clock:
            self._fill_months(clock)
        return self._replace(RFM, summary, ctes=[customer_rows(_ORDERS, ORDER_VALUES)])

    def _score(self, models: FittedValueModels, settings: Settings, rfm_row: pa.Table, end: dt.date) -> pa.Table:
        """The customer's new ``scores`` row: :func:`customer_inputs` and :func:`customer_scores` over ``rfm_row``."""
        rows_table, spend_table = customer_inputs(models, settings, rfm_row, end, clock=self.clock())
        self._fill(_ROWS, rows_table.schema, rows_table.to_pylist()[0])
        self._fill(_SPEND, spend_table.schema, spend_table.to_pylist()[0])
        horizons = tuple(int(h) for h in settings.model.horizons_months)
        key = ("scores", models.model_id, horizons, settings.model.value, rfm_row.schema, rows_table.schema,
               spend_table.schema)
        scores = stamped(self._compiled(key, lambda: customer_scores(
            _placeholder(_RFM, rfm_row.schema), _placeholder(_ROWS, rows_table.schema),
            _placeholder(_SPEND, spend_table.schema), models, settings)))
        ctes = [customer_rows(_RFM, RFM)]
        if SCORES in self.tables():
            return self._replace(SCORES, scores, ctes=ctes)
        return self._run(select_sql(scores.sql, ctes=ctes)).to_arrow_table().cast(scores.schema)

    # -- the machinery -------------------------------------------------------------------
    def tables(self) -> set[str]:
        """The tables of the default schema, as the writer connection sees them (read once)."""
        if self._tables is None:
            found = self.cursor.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = current_schema() AND NOT temporary").fetchall()
            self._tables = {row[0] for row in found}
        return self._tables

    def clock(self) -> Seasonality | None:
        """The seasonal clock ``rfm`` was summarised on, ``None`` for the calendar (read once; again after a
        :meth:`refresh`)."""
        if not self._clock_read:
            self._clock = stored_seasonality(self.warehouse)
            self._clock_read = True
        return self._clock

    def values_schema(self) -> Any:
        """The Ibis schema of ``order_values``, read once (only the service writes while it runs)."""
        if self._values_schema is None:
            self._values_schema = self.warehouse.table(ORDER_VALUES).schema()
        return self._values_schema

    def _input_table(self, name: str, schema: pa.Schema) -> tuple[str, ...]:
        """Create temporary table ``name`` of ``schema`` unless made already; returns its columns."""
        columns = self._inputs.get(name)
        if columns is None:
            types = ibis.Schema.from_pyarrow(schema).items()
            self.cursor.execute(f"CREATE OR REPLACE TEMP TABLE {quote(name)} ("
                             + ", ".join(f"{quote(c)} {DuckDBType.to_string(t)}" for c, t in types) + ")")
            columns = self._inputs[name] = tuple(schema.names)
            self._created = True
        return columns

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], ir.Table]) -> Compiled:
        """The DuckDB SQL of the expression ``build`` makes, and its schema, compiled on first use."""
        compiled = self._sql.get(key)
        if compiled is None:
            expr = build()
            compiled = self._sql[key] = Compiled(str(ibis.to_sql(expr, dialect="duckdb")), expr.schema().to_pyarrow())
        return compiled

    def _replace(self, table: str, rows: Compiled, *, ctes: Sequence[str] = ()) -> pa.Table:
        """Replace the event's customer's rows of ``table`` by those of ``rows``; returns them as stored.

        They come back typed as the expression says (DuckDB may answer a count as HUGEINT
        where the expression says int64; Ibis casts too).
        """
        self._run(f"DELETE FROM {quote(table)} WHERE {THE_CUSTOMER}")
        inserted = self._run(insert_sql(table, rows.sql, ctes=ctes, returning=rows.schema.names))
        return inserted.to_arrow_table().cast(rows.schema)

    def _run(self, sql: str) -> duckdb.DuckDBPyConnection:
        """Execute statement ``sql`` on the writer connection, prepared on its first run."""
        name = self._prepared.get(sql)
        if name is None:
            name = f"patron_event_{next(self._names)}"
            self.cursor.execute(f"PREPARE {quote(name)} AS {sql}")
            self._prepared[sql] = name
        return self.cursor.execute(f"EXECUTE {quote(name)}")

    def _fill_months(self, clock: Seasonality) -> None:
        """Make temporary table :data:`_MONTHS` hold ``clock``'s month table (24 rows per market)."""
        months = pa.Table.from_pandas(clock.month_table(), preserve_index=False)
        columns = self._input_table(_MONTHS, months.schema)
        self._run(f"DELETE FROM {quote(_MONTHS)}")
        source = "_patron_months_source"
        self.cursor.register(source, months)
        try:
            self.cursor.execute(f"INSERT INTO {quote(_MONTHS)} BY NAME SELECT {', '.join(map(quote, columns))} "
                             f"FROM {quote(source)}")
        finally:
            self.cursor.unregister(source)
        self._months_of = clock

    def _fill(self, name: str, schema: pa.Schema, row: dict[str, Any]) -> None:
        """Make temporary table ``name`` (of ``schema``) hold ``row`` alone."""
        columns = self._input_table(name, schema)
        self._run(f"DELETE FROM {quote(name)}")
        self.cursor.execute(f"INSERT INTO {quote(name)} VALUES ({', '.join('?' * len(columns))})",
                         [row[c] for c in columns])


def stamped(scores: Compiled) -> Compiled:
    """The compiled scores with ``scored_at`` set to the time the order was received (the compiled literal is
    the time the expression was compiled)."""
    if "scored_at" not in scores.schema.names:
        return scores
    at = DuckDBType.to_string(ibis.dtype(scores.schema.field("scored_at").type))
    sql = (f"SELECT * REPLACE (CAST((SELECT received_at FROM {_EVENT}) AS {at}) AS {quote('scored_at')}) "
           f"FROM ({scores.sql}) AS _patron_scores")
    return Compiled(sql, scores.schema)


def months_placeholder(expr: ir.Table) -> ir.Table:
    """``expr`` with the clock's month table (its one memory table, if any) read from placeholder :data:`_MONTHS`."""
    memory = list(dict.fromkeys(expr.op().find(ops.InMemoryTable)))
    if not memory:
        return expr
    if len(memory) > 1:
        raise ValueError(f"expected one memory table (the clock's months), found {len(memory)}")
    return expr.op().replace({memory[0]: _placeholder(_MONTHS, memory[0].schema).op()}).to_expr()


def _placeholder(name: str, schema: pa.Schema | Any) -> ir.Table:
    """An unbound table ``name`` of ``schema`` (Arrow or Ibis) to compile an expression over."""
    return ibis.table(ibis.Schema.from_pyarrow(schema) if isinstance(schema, pa.Schema) else schema, name=name)
