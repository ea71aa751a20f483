"""What an ingest rejects and records: ``rejects`` rows with their reasons, and the ``ingest_log``.

A rejected row gets one ``rejects`` row per failing field (or key conflict, or broken CSV
row) with the file, line, value, reason and the file's own record, so a user can fix the
source; a corrected file that is ingested again clears its lines' old rejects. Every
ingested file gets one ``ingest_log`` row, which is also how an identical file is skipped.
"""

from __future__ import annotations

import datetime as dt
import json

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from patron.contract import Column, TableContract
from patron.engine import Warehouse
from patron.tables import INGEST_LOG, REJECTS
from patron.transforms.ingest_rows import CONFLICT_FILE, ERR, INVALID, REJECTED_STATUSES
from patron.transforms.readers import RawFile

REJECTS_SCHEMA = pa.schema([
    ("table_name", pa.string()), ("file", pa.string()), ("line", pa.int64()), ("field", pa.string()),
    ("value", pa.string()), ("reason", pa.string()), ("record", pa.string()),
    ("run_at", pa.timestamp("us", tz="UTC")),
])
LOG_SCHEMA = pa.schema([
    ("table_name", pa.string()), ("file", pa.string()), ("sha256", pa.string()), ("rows_read", pa.int64()),
    ("loaded", pa.int64()), ("unchanged", pa.int64()), ("rejected", pa.int64()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
])
_TYPE_WORDS = {"timestamp": "timestamp", "date": "date", "boolean": "boolean"}


def logged_ingest(warehouse: Warehouse, table: str, sha256: str) -> str | None:
    """The file an identical content was ingested from into ``table``, or None."""
    if not warehouse.has_table(INGEST_LOG):
        return None
    log = warehouse.table(INGEST_LOG)
    hits = warehouse.to_pandas(log.filter((log.table_name == table) & (log.sha256 == sha256)).select("file"))
    return None if hits.empty else str(hits["file"].iloc[0])


def rule_message(code: str, column: Column, value: str | None) -> str:
    """The reason a rejected value gets, from the rule code ``failed_rule`` gave it."""
    kind = column.ibis_type
    if code == "missing":
        return "missing required value"
    if code == "parse":
        word = "timestamp" if kind.is_timestamp() else str(kind)
        return f"cannot parse {value!r} as {_TYPE_WORDS.get(word, word)}"
    if code == "negative":
        return f"negative value {value!r} (must be >= 0)"
    if code == "not_positive":
        return f"value {value!r} must be positive"
    if code == "future":
        return f"{value!r} is in the future (more than [quality] future_tolerance_days after the ingest)"
    allowed = sorted(column.allowed or ())
    listed = f" (allowed: {', '.join(allowed)})" if len(allowed) <= 12 else ""
    return f"unknown {column.name} {value!r}{listed}"


def reject_frame(
    contract: TableContract, raw: RawFile, rows: pd.DataFrame, *, run_at: dt.datetime,
    records: pa.Table | None = None,
) -> pa.Table:
    """One rejects row per failing field of ``rows``, per key conflict and per broken CSV row.

    ``records`` (aligned with ``raw.table``; default ``raw.table``) is what a rejected row shows:
    the file's own row when ``raw`` was mapped to the contract.
    """
    own = raw.table if records is None else records
    names = own.column_names
    positions = pa.array(rows["_row"].astype("int64"), pa.int64()) if len(rows) else pa.array([], pa.int64())
    mapped = raw.table.take(positions).to_pylist()
    records = own.take(positions).to_pylist()
    out: list[dict[str, object]] = []
    base = {"table_name": contract.name, "file": str(raw.path), "run_at": run_at}
    for row, record, values in zip(rows.to_dict("records"), records, mapped, strict=True):
        common = {**base, "line": int(row["_line"]), "record": json.dumps(record, ensure_ascii=False)}
        for field_name, value, reason in _row_reasons(contract, row, values):
            out.append({**common, "field": field_name, "value": value, "reason": reason})
    for bad in raw.bad_rows:
        record = json.dumps(dict(zip(names, bad.fields, strict=False)) | {"_fields": bad.fields})
        out.append({**base, "line": bad.line, "field": None, "value": None, "reason": bad.reason,
                    "record": record})
    return pa.Table.from_pylist(out, schema=REJECTS_SCHEMA)


def _row_reasons(
    contract: TableContract, row: dict[str, object], record: dict[str, object]
) -> list[tuple[str, str | None, str]]:
    status = row["_status"]
    if status == INVALID:
        reasons = []
        for column in contract:
            code = row[column.name + ERR]
            if isinstance(code, str):
                value = _text(record.get(column.name))
                reasons.append((column.name, value, rule_message(code, column, value)))
        return reasons
    key_field = ", ".join(contract.keys)
    key_value = ", ".join(_text(record.get(k)) or "" for k in contract.keys)
    if status == CONFLICT_FILE:
        first = int(row["_first_line"])
        return [(key_field, key_value, f"key seen before with different content (line {first})")]
    return [(key_field, key_value, "key already in the warehouse with different content")]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def new_rejects(warehouse: Warehouse, rejects: pa.Table, *, table: str, file: str) -> pa.Table:
    """``rejects`` less those already recorded for the same file, line, field, reason and record."""
    if not rejects.num_rows or not warehouse.has_table(REJECTS):
        return rejects
    old = warehouse.table(REJECTS)
    seen = warehouse.to_pandas(
        old.filter((old.table_name == table) & (old.file == file)).select("line", "field", "reason", "record")
    )
    if seen.empty:
        return rejects
    known = {tuple(None if pd.isna(v) else v for v in r) for r in seen.itertuples(index=False)}
    columns = [rejects[c].to_pylist() for c in ("line", "field", "reason", "record")]
    keep = [row not in known for row in zip(*columns, strict=True)]
    return rejects.filter(pa.array(keep))


def set_aside_rejects(contract: TableContract, file: str, held: pa.Table, *, run_at: dt.datetime) -> pa.Table:
    """Rejects rows for the rows a mapping set aside (excluded by a rule, or an unmapped value)."""
    n = held.num_rows
    return pa.table({
        "table_name": pa.array([contract.name] * n, pa.string()), "file": pa.array([file] * n, pa.string()),
        "line": held["line"].cast(pa.int64()), "field": held["field"], "value": held["value"],
        "reason": held["reason"], "record": held["record"],
        "run_at": pa.array([run_at] * n, pa.timestamp("us", tz="UTC")),
    }, schema=REJECTS_SCHEMA)


def most_common_reason(reasons: pa.ChunkedArray) -> str:
    """The reason most rejects share: the one line a summary of the file shows."""
    counts = pc.value_counts(reasons.combine_chunks()).to_pylist()
    best = max(counts, key=lambda c: c["counts"])
    return str(best["values"])


def fixed_lines(warehouse: Warehouse, rows: ir.Table, *, table: str, file: str) -> list[int]:
    """Lines of ``file`` rejected before that now load (or are already loaded): a corrected file.

    Rejects are kept per file and line; when the same file, corrected, is ingested again,
    the rows that pass now must leave ``rejects``, or a user would chase fixed errors.
    """
    if not warehouse.has_table(REJECTS):
        return []
    old = warehouse.table(REJECTS)
    old = old.filter((old.table_name == table) & (old.file == file)).select(line=old.line).distinct()
    good = rows.filter(~rows._status.isin(REJECTED_STATUSES)).select(line=rows._line)
    fixed = warehouse.to_pandas(old.semi_join(good, "line"))
    return sorted(int(v) for v in fixed["line"])


def resolve_rejects(warehouse: Warehouse, lines: list[int], *, table: str, file: str) -> None:
    """Drop the rejects of ``file``'s ``lines`` from ``rejects``: those rows are loaded now."""
    if not lines:
        return
    old = warehouse.table(REJECTS)
    fixed = (old.table_name == table) & (old.file == file) & old.line.isin(lines)
    warehouse.write(REJECTS, old.filter(~fixed))


def append_rejects(warehouse: Warehouse, rejects: pa.Table) -> None:
    """Add ``rejects`` to the ``rejects`` table (nothing when there are none)."""
    if rejects.num_rows:
        warehouse.write(REJECTS, small_table(rejects), mode="append")


def append_log(warehouse: Warehouse, *, table: str, file: str, sha256: str, rows_read: int, loaded: int,
               unchanged: int, rejected: int, run_at: dt.datetime) -> None:
    """Record one ingested file in ``ingest_log``: its content hash and what its rows became."""
    row = {"table_name": table, "file": file, "sha256": sha256, "rows_read": rows_read, "loaded": loaded,
           "unchanged": unchanged, "rejected": rejected, "ingested_at": run_at}
    warehouse.write(INGEST_LOG, small_table(pa.Table.from_pylist([row], schema=LOG_SCHEMA)), mode="append")


def small_table(table: pa.Table) -> ir.Table:
    """A few rows as an in-memory Ibis table whose NULL texts stay NULL on every engine.

    Ibis hands Spark a pandas frame; pandas 3 turns a NULL text into NaN there and
    Spark stores the text 'NaN'. Python objects (None) keep it NULL.
    """
    frame = pd.DataFrame({n: pd.Series(table[n].to_pylist(), dtype=object) for n in table.column_names})
    schema = ibis.Schema.from_pyarrow(table.schema)
    return ibis.memtable(frame, schema=schema)
