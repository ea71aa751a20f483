"""The activation steps: segments, audiences, exports, and erasure of persons.

What the scores are for: ``segments`` writes value tiers, RFM segments and lifecycle
stages; ``audiences`` sizes the defined audiences, consent applied; ``export_audience``
and ``export_table`` write files; ``erase`` removes persons everywhere (GDPR).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.activation.audiences import audience_counts, list_audiences
from patron.activation.exports import ExportResult
from patron.activation.exports import export_audience as write_audience_file
from patron.activation.segments import LEVELS, scores_as_of, segment_counts, write_segments
from patron.config import Settings
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.governance.privacy import ErasureResult, erase_customers
from patron.pipeline.project import Reporter, open_warehouse
from patron.serving.erase import erase_from_serving
from patron.serving.online import open_online_store
from patron.tables import CAR, SEGMENTS
from patron.transforms.features.lifecycle import STAGES as LIFECYCLE_STAGES

#: The segment columns :func:`segments` counts customers by, in the order they are shown.
SEGMENT_COLUMNS = ("value_tier", "rfm_segment", "lifecycle_stage")
#: The strategy grid's dimensions (see :mod:`patron.activation.segments`), each rated low / medium / high.
GRID_COLUMNS = ("current_value", "potential_value", "engagement")


def in_order(frame: pd.DataFrame, column: str, order: Sequence[str]) -> pd.DataFrame:
    """``frame`` with its rows in the order of ``order`` by ``column``; values not in it last, by name."""
    position = frame[column].map({name: i for i, name in enumerate(order)}).fillna(len(order))
    ordered = frame.assign(_position=position).sort_values(["_position", column], kind="stable")
    return ordered.drop(columns="_position").reset_index(drop=True)


def segment_order(settings: Settings, column: str) -> tuple[str, ...]:
    """How the values of segment ``column`` are ordered for people: tiers from the top (``[segments]
    tier_names``), RFM segments in the order of the grid, lifecycle stages from new to lapsed."""
    if column == "value_tier":
        return tuple(settings.segments.tier_names)
    if column == "rfm_segment":
        return tuple(dict.fromkeys(cell[0] for cell in settings.segments.rfm_grid))
    if column == "lifecycle_stage":
        return LIFECYCLE_STAGES
    return ()


def strategy_grid(warehouse: Warehouse) -> pd.DataFrame:
    """Customers per strategy cell: ``current_value``, ``potential_value``, ``engagement``, ``strategy_cell``,
    ``customers``; every one of the 27 cells (empty ones with 0), high before low on each dimension."""
    table = warehouse.table(SEGMENTS)
    counts = warehouse.to_pandas(table.group_by(list(GRID_COLUMNS)).aggregate(customers=table.count()))
    levels = list(reversed(LEVELS))  # high, medium, low
    full = pd.MultiIndex.from_product([levels] * len(GRID_COLUMNS), names=list(GRID_COLUMNS))
    grid = counts.set_index(list(GRID_COLUMNS))["customers"].reindex(full, fill_value=0).reset_index()
    grid.insert(3, "strategy_cell", grid[list(GRID_COLUMNS)].agg("_".join, axis=1))
    return grid.astype({"customers": "int64"})


def segments(settings: Settings, *, reporter: Reporter | None = None) -> dict[str, pd.DataFrame]:
    """Write the ``segments`` table from the scores; customers per value tier, RFM segment, lifecycle
    stage (each in :func:`segment_order`) and strategy cell (key ``strategy_cell``: :func:`strategy_grid`).

    The customer record (``car``) must be the one as of the scores' date (the day after
    their observation end); a record of another date is refused with both dates and the
    ``patron features --as-of`` command that builds the right one. Without any record the
    reporter is told that lifecycle and engagement are unknown.
    """
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse:
        if not warehouse.has_table(CAR):
            as_of = scores_as_of(warehouse, settings)
            reporter.note("no customer record (car): lifecycle stages are unknown and engagement low; run "
                          f"`patron features{f' --as-of {as_of}' if as_of else ''}` first")
        write_segments(warehouse, settings)
        counts = {column: in_order(warehouse.to_pandas(segment_counts(warehouse, column)), column,
                                   segment_order(settings, column))
                  for column in SEGMENT_COLUMNS}
        return counts | {"strategy_cell": strategy_grid(warehouse)}


def audiences(settings: Settings, *, reporter: Reporter | None = None) -> pd.DataFrame:
    """Every defined audience with its size, the members without consent left out."""
    reporter = reporter or Reporter()
    rows = []
    with open_warehouse(settings) as warehouse:
        consent = warehouse.input_table("customers").marketing_consent
        if warehouse.has_table(SEGMENTS) and not warehouse.scalar(consent.notnull().any()):
            reporter.note("no marketing consent recorded (customers.marketing_consent): every customer counts "
                          "as not consenting, so audiences have no members to export")
        for audience in list_audiences(settings):
            counts = audience_counts(warehouse, settings, audience.name)
            rows.append({"name": audience.name, "description": audience.description, "matched": counts.matched,
                         "members": counts.members, "excluded_no_consent": counts.excluded_no_consent})
    return pd.DataFrame(rows)


def export_audience(settings: Settings, name: str, fmt: str, out: Path, *, market: str | None = None,
                    horizon: int | None = None) -> ExportResult:
    """Write audience ``name`` in a platform's format (google, meta, crm, csv); consent applied."""
    with open_warehouse(settings) as warehouse:
        return write_audience_file(warehouse, settings, name, fmt, out, market=market, horizon=horizon)


def export_table(settings: Settings, table: str, out: Path) -> int:
    """Write warehouse ``table`` to ``out`` (.csv or .parquet), streaming, all or nothing.

    The rows stream from the engine in Arrow batches into a temporary file beside ``out``,
    which replaces ``out`` only when every batch is written; returns the rows written.
    """
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise PatronError(f"{out}: the export format is taken from the suffix: .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings) as warehouse:
        expr = warehouse.table(table)
        batches = warehouse.batches(expr)
        first = next(batches, None)
        # an empty table may stream no batch at all: its schema then comes from the expression
        schema = first.schema if first is not None else expr.schema().to_pyarrow()
        handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(handle)
        rows = 0
        try:
            writer: pq.ParquetWriter | pacsv.CSVWriter = (
                pq.ParquetWriter(tmp_name, schema) if suffix == ".parquet" else pacsv.CSVWriter(tmp_name, schema)
            )
            with writer:
                for batch in itertools.chain([] if first is None else [first], batches):
                    writer.write_batch(batch)
                    rows += batch.num_rows
            os.replace(tmp_name, out)
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    return rows


def erase(settings: Settings, customer_keys: Sequence[str] = (), *, reason: str,
          records: Sequence[tuple[str, str]] = ()) -> ErasureResult:
    """GDPR erasure of persons everywhere: the warehouse (see ``patron.governance.privacy``), then every kept serving
    version and the online store (``patron.serving.erase``); works while ``patron serve`` runs."""
    with open_warehouse(settings) as warehouse:
        result = erase_customers(warehouse, customer_keys, records=records, reason=reason)
    with open_online_store(settings) as store:
        served = erase_from_serving(settings.serving_dir, store, result.customer_keys)
    return replace(result, serving=served)
