"""Ingest a file into its contract table: coerce, check, load the good rows, keep the bad.

The file is read as text (``readers``), put into the engine, and coerced and checked
by one engine-neutral Ibis expression per table (``checked_rows`` then
``classified_rows``, in :mod:`patron.transforms.ingest_rows`): each row ends up
``load``, ``unchanged`` (already in the warehouse or repeated in the file) or rejected
with a reason. Valid new rows are appended to the contract table, bad ones to
``rejects`` with file, line, field and reason, and the file to ``ingest_log``
(:mod:`patron.transforms.ingest_rejects`); all three writes happen in one transaction
after everything has been computed, so a failure leaves the warehouse as it was.

This module holds the step itself: which table a file feeds, the entry points
:func:`ingest_file` and :func:`ingest_raw`, and the preparation of a mapped file.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from patron.contract import CONTRACT, TableContract, contract_table
from patron.engine import Warehouse
from patron.errors import DataContractError
from patron.transforms.ingest_rejects import (
    append_log,
    append_rejects,
    fixed_lines,
    logged_ingest,
    most_common_reason,
    new_rejects,
    reject_frame,
    resolve_rejects,
    set_aside_rejects,
)
from patron.transforms.ingest_rows import (
    DUPLICATE,
    LOAD,
    RAW,
    REJECTED_STATUSES,
    UNCHANGED,
    checked_rows,
    classified_rows,
    raw_frame,
    staged,
    status_counts,
    write_rows,
)
from patron.transforms.pseudonyms import HASHED_COLUMNS, pii_key, prepare_raw, pseudonymise_raw
from patron.transforms.readers import RawFile, read_raw

__all__ = ["IngestResult", "ingest_file", "ingest_raw", "table_for_path"]


@dataclass
class IngestResult:
    """What one file did to the warehouse.

    ``rows_read = loaded + unchanged + rejected + excluded + erased`` unless the file was skipped;
    ``erased`` rows belong to persons in ``erasure_log`` and are dropped (see ``patron.governance.privacy``);
    ``excluded`` rows matched an ``exclude`` rule of the file's source and went to ``rejects``.
    """

    table: str
    file: str
    rows_read: int = 0
    loaded: int = 0
    unchanged: int = 0
    rejected: int = 0
    erased: int = 0
    excluded: int = 0
    resolved: int = 0
    skipped_file: bool = False
    warnings: list[str] = field(default_factory=list)
    top_reason: str | None = None

    @property
    def all_rejected(self) -> bool:
        """Rows were read and not one of them loaded: the file, not a row, is wrong."""
        return not self.skipped_file and self.rejected > 0 and self.loaded + self.unchanged == 0


# -- which table ----------------------------------------------------------------------
def table_for_path(path: Path | str) -> str:
    """The contract table a file feeds, from its name.

    The stem itself (``orders.csv``) or the longest contract table name the stem
    starts with, followed by ``_``, ``-`` or ``.`` (``order_lines_2024-01.parquet`` is
    ``order_lines``, not ``orders``).
    """
    stem = Path(path).stem
    if stem in CONTRACT:
        return stem
    matches = [t for t in CONTRACT if any(stem.startswith(t + sep) for sep in "_-.")]
    if matches:
        return max(matches, key=len)
    known = ", ".join(sorted(CONTRACT))
    raise DataContractError(
        f"{path}: cannot tell the table from the file name; name it after a table ({known}), "
        "optionally followed by _, - or . and anything, or pass the table explicitly"
    )


# -- the whole step -------------------------------------------------------------------
def ingest_file(warehouse: Warehouse, path: Path | str, table: str | None = None) -> IngestResult:
    """Load ``path`` into its contract table; bad rows to ``rejects``, the file to ``ingest_log``.

    A file whose content (sha256) was already ingested into the same table is skipped.
    Rows already in the warehouse with identical content count as unchanged, so
    re-ingesting changed files adds only what is new.
    """
    contract = contract_table(table or table_for_path(path))
    return ingest_raw(warehouse, read_raw(path), contract.name)


def ingest_raw(warehouse: Warehouse, raw: RawFile, table: str, *, records: pa.Table | None = None,
               set_aside: pa.Table | None = None, origin: dict[str, str] | None = None) -> IngestResult:
    """Load an already read (and mapped) file into ``table``, as :func:`ingest_file` does.

    Parameters
    ----------
    raw
        Text columns named after the contract, with each row's physical line.
    records
        The file's own rows, aligned with ``raw.table``: what ``rejects`` shows of a rejected
        row (default: ``raw.table`` itself). ``origin`` (contract column → file column) says
        which of their fields to pseudonymise when ``[privacy] hash_personal_data`` is set.
    set_aside
        Per row of ``raw``: ``reason`` (NULL: check and load the row), ``field``, ``value``
        and ``excluded``, from :func:`patron.transforms.mapping.apply_mapping`. Rows with a
        reason go to ``rejects`` unchecked; excluded ones are counted in ``excluded``.
    """
    contract = contract_table(table)
    path = raw.path
    result = IngestResult(table=contract.name, file=str(path), warnings=list(raw.warnings))
    previous = logged_ingest(warehouse, contract.name, raw.sha256)
    if previous is not None:
        result.skipped_file = True
        result.warnings.append(f"{path}: same content already ingested into {contract.name} from {previous}")
        return result
    if records is None and set_aside is None:
        raw, result.erased = prepare_raw(warehouse, raw, contract)  # pseudonymise; drop erased persons' rows
        held, own = pa.table({}), raw.table
    else:
        raw, own, held, result.erased = _prepared_mapped(warehouse, raw, contract, records, set_aside, origin or {})
    frame, header_warnings = raw_frame(raw, contract)
    result.warnings.extend(header_warnings)
    existing = warehouse.table(contract.name) if warehouse.has_table(contract.name) else None
    run_at = dt.datetime.now(dt.UTC)
    latest = run_at + dt.timedelta(days=warehouse.settings.quality.future_tolerance_days)
    classified = classified_rows(checked_rows(ibis.memtable(frame), contract, latest=latest), contract, existing)
    # the text columns are not staged: rejects take their raw values from the file itself
    classified = classified.drop(*[c.name + RAW for c in contract])
    with staged(warehouse, classified) as rows:
        counts = status_counts(warehouse, rows)
        rejected_rows = warehouse.to_pandas(rows.filter(rows._status.isin(REJECTED_STATUSES)))
        rejects = reject_frame(contract, raw, rejected_rows, run_at=run_at, records=own)
        if held.num_rows:
            rejects = pa.concat_tables([set_aside_rejects(contract, str(path), held, run_at=run_at), rejects])
        result.top_reason = most_common_reason(rejects["reason"]) if rejects.num_rows else None
        rejects = new_rejects(warehouse, rejects, table=contract.name, file=str(path))
        fixed = fixed_lines(warehouse, rows, table=contract.name, file=str(path))
        result.excluded = int(pc.sum(held["excluded"]).as_py() or 0) if held.num_rows else 0
        result.rows_read = frame.num_rows + len(raw.bad_rows) + result.erased + held.num_rows
        result.loaded = counts.get(LOAD, 0)
        result.unchanged = counts.get(UNCHANGED, 0) + counts.get(DUPLICATE, 0)
        result.rejected = len(rejected_rows) + len(raw.bad_rows) + held.num_rows - result.excluded
        result.resolved = len(fixed)
        with warehouse.transaction():
            write_rows(warehouse, contract, rows, existing is not None)
            resolve_rejects(warehouse, fixed, table=contract.name, file=str(path))
            append_rejects(warehouse, rejects)
            # excluded rows went to rejects too: the log keeps rows_read = loaded + unchanged + rejected + erased
            append_log(warehouse, table=result.table, file=result.file, sha256=raw.sha256,
                       rows_read=result.rows_read, loaded=result.loaded, unchanged=result.unchanged,
                       rejected=result.rejected + result.excluded, run_at=run_at)
    return result


_POSITION = "__position"  # carries each mapped row's position through pseudonymisation and erasure


def _prepared_mapped(
    warehouse: Warehouse, raw: RawFile, contract: TableContract, records: pa.Table | None,
    set_aside: pa.Table | None, origin: dict[str, str],
) -> tuple[RawFile, pa.Table, pa.Table, int]:
    """A mapped file pseudonymised and less erased persons' rows, split into rows to check and rows held.

    Returns the rows to check, their own records, the held rows (set aside by the mapping:
    line, field, value, reason, excluded, record) and the number of rows erased.
    """
    n = raw.table.num_rows
    records = raw.table if records is None else records
    tagged = replace(raw, table=raw.table.append_column(_POSITION, pa.array(range(n), pa.int64())))
    tagged, erased = prepare_raw(warehouse, tagged, contract)
    positions = tagged.table[_POSITION].combine_chunks()
    prepared = replace(tagged, table=tagged.table.drop_columns([_POSITION]))
    hashed = _hashed_fields(warehouse, contract, origin)
    if hashed:
        columns = {f: kind for f, kind in hashed.items() if f in records.column_names}
        records = pseudonymise_raw(replace(raw, table=records, bad_rows=[]), columns, pii_key(warehouse.settings)).table
    records = records.take(positions)
    if set_aside is None:
        return prepared, records, pa.table({}), erased
    aside = set_aside.take(positions)
    held = pc.is_valid(aside["reason"])
    keep = pc.invert(held)
    checked = replace(prepared, table=prepared.table.filter(keep), lines=pc.filter(prepared.lines, keep))
    values = aside["value"]
    if hashed:  # a held value of a personal field is not shown in clear
        personal = pa.array([*hashed, *HASHED_COLUMNS[contract.name]], pa.string())
        values = pc.if_else(pc.is_in(aside["field"], value_set=personal), pa.scalar(None, pa.string()), values)
    held_rows = pa.table({"line": pc.filter(prepared.lines, held), "field": aside["field"].filter(held),
                          "value": pc.filter(values, held), "reason": aside["reason"].filter(held),
                          "excluded": aside["excluded"].filter(held)})
    record_text = [json.dumps(r, ensure_ascii=False) for r in records.filter(held).to_pylist()]
    held_rows = held_rows.append_column("record", pa.array(record_text, pa.string()))
    return checked, records.filter(keep), held_rows, erased


def _hashed_fields(warehouse: Warehouse, contract: TableContract, origin: dict[str, str]) -> dict[str, str]:
    """File column → pseudonym kind of the file columns feeding pseudonymised contract columns."""
    if not warehouse.settings.privacy.hash_personal_data:
        return {}
    kinds = HASHED_COLUMNS.get(contract.name, {})
    return {origin.get(column, column): kind for column, kind in kinds.items()}


