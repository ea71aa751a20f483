"""Ingest a file into its contract table: coerce, check, load the good rows, keep the bad.

The file is read as text (``readers``), put into the engine, and coerced and checked
by one engine-neutral Ibis expression per table (``checked_rows`` then
``classified_rows``): each row ends up ``load``, ``unchanged`` (already in the
warehouse or repeated in the file) or rejected with a reason. Valid new rows are
appended to the contract table, bad ones to ``rejects`` with file, line, field and
reason, and the file to ``ingest_log``; all three writes happen in one transaction
after everything has been computed, so a failure leaves the warehouse as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from patron.contract import CONTRACT, Column, TableContract, contract_table
from patron.engine import Warehouse
from patron.errors import DataContractError
from patron.tables import INGEST_LOG, REJECTS
from patron.transforms.pseudonyms import HASHED_COLUMNS, pii_key, prepare_raw, pseudonymise_raw
from patron.transforms.readers import RawFile, read_raw
from patron.transforms.text import is_blank, trim

RAW = "__raw"  # suffix of the text column a contract column was parsed from
ERR = "__err"  # suffix of the column holding the code of a column's first failed rule

_INT = r"^[+-]?[0-9]+$"
_FLOAT = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")

LOAD, UNCHANGED, DUPLICATE = "load", "unchanged", "duplicate"
INVALID, CONFLICT_FILE, CONFLICT_WAREHOUSE = "invalid", "conflict_file", "conflict_warehouse"
REJECTED_STATUSES = (INVALID, CONFLICT_FILE, CONFLICT_WAREHOUSE)

__all__ = ["INGEST_LOG", "REJECTS", "IngestResult", "checked_rows", "classified_rows", "ingest_file",
           "ingest_raw", "table_for_path"]


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


# -- coercion and checks (engine-neutral) ---------------------------------------------
def _blank(text: ir.StringValue) -> ir.BooleanValue:
    return is_blank(text)


def parse_value(text: ir.StringValue, column: Column) -> ir.Value:
    """``text`` coerced to the column's contract type; NULL when blank or unparsable.

    Each type is gated by a pattern before the cast so that both engines accept
    exactly the same spellings (DuckDB rounds '1.5' to an integer, Spark reads '2024'
    as a timestamp, and both read 'inf').
    """
    kind = column.ibis_type
    clean = trim(text)
    if kind.is_string():
        return ibis.ifelse(_blank(text), ibis.null(kind), text)
    if kind.is_boolean():
        word = clean.lower()
        return ibis.cases((word.isin(TRUE_WORDS), True), (word.isin(FALSE_WORDS), False),
                          else_=ibis.null(kind))
    pattern = _INT if kind.is_integer() else _FLOAT if kind.is_floating() else _TIMESTAMP if (
        kind.is_timestamp()) else _DATE if kind.is_date() else None
    if pattern is None:
        raise DataContractError(f"column {column.name}: no parser for type {kind}")
    parsed = clean.try_cast(kind)
    if kind.is_floating():
        parsed = ibis.ifelse(parsed.isinf(), ibis.null(kind), parsed)
    return ibis.ifelse(clean.re_search(pattern), parsed, ibis.null(kind))


def failed_rule(text: ir.StringValue, value: ir.Value, column: Column, *, required: bool,
                latest: dt.datetime | None = None) -> ir.StringValue:
    """The code of the first rule ``value`` breaks (missing, parse, negative, future, ...), else NULL.

    ``latest``: the latest instant a timestamp may hold (now plus ``[quality]
    future_tolerance_days``); a later one is a clock error at the source, and loading it
    would move every customer's observation end into the future.
    """
    blank = _blank(text)
    rules: list[tuple[ir.BooleanValue, str]] = []
    if required:
        rules.append((blank, "missing"))
    rules.append((~blank & value.isnull(), "parse"))
    if column.non_negative:
        rules.append((value < 0, "negative"))
    if column.positive:
        rules.append((value <= 0, "not_positive"))
    if column.allowed is not None:
        rules.append((~value.isin(sorted(column.allowed)), "not_allowed"))
    if latest is not None and column.ibis_type.is_timestamp():
        rules.append((value > ibis.literal(latest, type=column.ibis_type), "future"))
    return ibis.cases(*rules, else_=ibis.null("string"))


def checked_rows(raw: ir.Table, contract: TableContract, *, latest: dt.datetime | None = None) -> ir.Table:
    """Every raw row with its contract columns typed, a rule code per column and ``_bad``.

    ``raw`` holds ``_row``, ``_line`` and one text column ``<name>__raw`` per contract column;
    timestamps after ``latest`` are rejected as in the future.
    """
    typed = {c.name: parse_value(raw[c.name + RAW], c) for c in contract}
    errors = {
        c.name + ERR: failed_rule(raw[c.name + RAW], typed[c.name], c, required=contract.is_required(c),
                                  latest=latest)
        for c in contract
    }
    table = raw.mutate(**typed, **errors)
    return table.mutate(_bad=ibis.coalesce(*[table[name] for name in errors]).notnull())


def classified_rows(checked: ir.Table, contract: TableContract, existing: ir.Table | None) -> ir.Table:
    """``checked`` with ``_status`` (load, unchanged, duplicate or a rejection) and ``_first_line``.

    Within the file the first line of a key wins: later lines with the same content
    are duplicates, with other content conflicts. Against ``existing`` (the warehouse
    table, or None) a key already there is unchanged when every value is identical
    (NULLs compare equal), a conflict otherwise. Invalid rows are kept out of both.
    """
    keys = [*contract.keys]
    content = [*contract.column_names]
    by_key = ibis.window(group_by=[checked._bad, *[checked[k] for k in keys]])
    by_content = ibis.window(group_by=[checked._bad, *[checked[c] for c in content]])
    ranked = checked.mutate(_first_line=checked._line.min().over(by_key),
                            _version_line=checked._line.min().over(by_content))
    ranked, present, same = _against_warehouse(ranked, contract, existing)
    status = ibis.cases(
        (ranked._bad, INVALID),
        (ranked._version_line != ranked._first_line, CONFLICT_FILE),
        (ranked._line != ranked._version_line, DUPLICATE),
        (present & same, UNCHANGED),
        (present, CONFLICT_WAREHOUSE),
        else_=LOAD,
    )
    return ranked.mutate(_status=status)


def _against_warehouse(
    ranked: ir.Table, contract: TableContract, existing: ir.Table | None
) -> tuple[ir.Table, ir.BooleanValue, ir.BooleanValue]:
    if existing is None:
        return ranked, ibis.literal(False), ibis.literal(False)
    theirs = existing.select(
        _wh_present=ibis.literal(True),
        **{f"_wh_{c.name}": existing[c.name].cast(c.ibis_type) for c in contract},
    )
    joined = ranked.left_join(theirs, [ranked[k] == theirs[f"_wh_{k}"] for k in contract.keys])
    joined = joined.drop(*[f"_wh_{k}" for k in contract.keys])
    same = ibis.and_(*[joined[c].identical_to(joined[f"_wh_{c}"]) for c in contract.value_columns])
    return joined, joined._wh_present.notnull(), same


# -- the file into the engine ---------------------------------------------------------
def raw_frame(raw: RawFile, contract: TableContract) -> tuple[pa.Table, list[str]]:
    """The text columns ``checked_rows`` reads, and warnings about the file's header.

    Raises ``DataContractError`` when a key or required column is missing; optional
    columns missing from the file become NULL, extra columns are ignored.
    """
    names = raw.table.column_names
    missing = [c for c in contract if c.name not in names]
    hard = [c.name for c in missing if contract.is_required(c)]
    if hard:
        raise DataContractError(
            f"{raw.path}: missing required column(s) {', '.join(hard)} of table {contract.name}"
        )
    warnings = [f"{raw.path}: optional column(s) {', '.join(c.name for c in missing)} not in the file; left empty"] \
        if missing else []
    extra = [n for n in names if n not in contract.column_names]
    if extra:
        warnings.append(f"{raw.path}: ignored column(s) not in the contract: {', '.join(extra)}")
    n = raw.table.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "_row": pa.array(range(n), pa.int64()),
        "_line": raw.lines,
    }
    for c in contract:
        # blank means NULL to the checks; no NULLs in the text also keeps Spark from
        # receiving pandas' NaN (which it would store as the text 'NaN')
        text = raw.table[c.name] if c.name in names else pa.nulls(n, pa.string())
        columns[c.name + RAW] = pc.fill_null(text, "")
    return pa.table(columns), warnings


@contextmanager
def _staged(warehouse: Warehouse, expr: ir.Table) -> Iterator[ir.Table]:
    """``expr`` computed once into a staging table of the warehouse, dropped afterwards.

    The classified rows are read three times (counts, rejects, new rows); staging
    them computes the parsing, windows and join once, on every engine.
    """
    name = f"ingest_stage_{uuid.uuid4().hex[:12]}"
    warehouse.write(name, expr)
    try:
        yield warehouse.table(name)
    finally:
        warehouse.drop(name)


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
    with _staged(warehouse, classified) as rows:
        counts = _status_counts(warehouse, rows)
        rejected_rows = warehouse.to_pandas(rows.filter(rows._status.isin(REJECTED_STATUSES)))
        rejects = reject_frame(contract, raw, rejected_rows, run_at=run_at, records=own)
        if held.num_rows:
            rejects = pa.concat_tables([set_aside_rejects(contract, str(path), held, run_at=run_at), rejects])
        result.top_reason = _most_common(rejects["reason"]) if rejects.num_rows else None
        rejects = new_rejects(warehouse, rejects, table=contract.name, file=str(path))
        fixed = _fixed_lines(warehouse, rows, table=contract.name, file=str(path))
        result.excluded = int(pc.sum(held["excluded"]).as_py() or 0) if held.num_rows else 0
        result.rows_read = frame.num_rows + len(raw.bad_rows) + result.erased + held.num_rows
        result.loaded = counts.get(LOAD, 0)
        result.unchanged = counts.get(UNCHANGED, 0) + counts.get(DUPLICATE, 0)
        result.rejected = len(rejected_rows) + len(raw.bad_rows) + held.num_rows - result.excluded
        result.resolved = len(fixed)
        with warehouse.transaction():
            _write_rows(warehouse, contract, rows, existing is not None)
            _resolve_rejects(warehouse, fixed, table=contract.name, file=str(path))
            _append_rejects(warehouse, rejects)
            append_log(warehouse, result, raw.sha256, run_at=run_at)
    return result


def _most_common(reasons: pa.ChunkedArray) -> str:
    counts = pc.value_counts(reasons.combine_chunks()).to_pylist()
    best = max(counts, key=lambda c: c["counts"])
    return str(best["values"])


def _fixed_lines(warehouse: Warehouse, rows: ir.Table, *, table: str, file: str) -> list[int]:
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


def _resolve_rejects(warehouse: Warehouse, lines: list[int], *, table: str, file: str) -> None:
    """Drop the rejects of ``file``'s ``lines`` from ``rejects``: those rows are loaded now."""
    if not lines:
        return
    old = warehouse.table(REJECTS)
    fixed = (old.table_name == table) & (old.file == file) & old.line.isin(lines)
    warehouse.write(REJECTS, old.filter(~fixed))


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


def set_aside_rejects(contract: TableContract, file: str, held: pa.Table, *, run_at: dt.datetime) -> pa.Table:
    """Rejects rows for the rows a mapping set aside (excluded by a rule, or an unmapped value)."""
    n = held.num_rows
    return pa.table({
        "table_name": pa.array([contract.name] * n, pa.string()), "file": pa.array([file] * n, pa.string()),
        "line": held["line"].cast(pa.int64()), "field": held["field"], "value": held["value"],
        "reason": held["reason"], "record": held["record"],
        "run_at": pa.array([run_at] * n, pa.timestamp("us", tz="UTC")),
    }, schema=REJECTS_SCHEMA)


def _status_counts(warehouse: Warehouse, rows: ir.Table) -> dict[str, int]:
    counts = warehouse.to_pandas(rows.group_by("_status").aggregate(n=rows.count()))
    return {str(s): int(n) for s, n in zip(counts["_status"], counts["n"], strict=True)}


def _write_rows(warehouse: Warehouse, contract: TableContract, rows: ir.Table, exists: bool) -> None:
    new = rows.filter(rows._status == LOAD).select(
        *[rows[c.name].cast(c.ibis_type).name(c.name) for c in contract]
    )
    # an absent table is created even when nothing is new, so it has the contract's schema
    if not exists or warehouse.count(new):
        warehouse.write(contract.name, new, mode="append")


def _append_rejects(warehouse: Warehouse, rejects: pa.Table) -> None:
    if rejects.num_rows:
        warehouse.write(REJECTS, small_table(rejects), mode="append")


# -- rejects and the log ---------------------------------------------------------------
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


def append_log(warehouse: Warehouse, result: IngestResult, sha256: str, *, run_at: dt.datetime) -> None:
    """Record one ingested file in ``ingest_log``."""
    # excluded rows went to rejects too: the log keeps rows_read = loaded + unchanged + rejected + erased
    row = {"table_name": result.table, "file": result.file, "sha256": sha256, "rows_read": result.rows_read,
           "loaded": result.loaded, "unchanged": result.unchanged, "rejected": result.rejected + result.excluded,
           "ingested_at": run_at}
    warehouse.write(INGEST_LOG, small_table(pa.Table.from_pylist([row], schema=LOG_SCHEMA)), mode="append")


def small_table(table: pa.Table) -> ir.Table:
    """A few rows as an in-memory Ibis table whose NULL texts stay NULL on every engine.

    Ibis hands Spark a pandas frame; pandas 3 turns a NULL text into NaN there and
    Spark stores the text 'NaN'. Python objects (None) keep it NULL.
    """
    frame = pd.DataFrame({n: pd.Series(table[n].to_pylist(), dtype=object) for n in table.column_names})
    schema = ibis.Schema.from_pyarrow(table.schema)
    return ibis.memtable(frame, schema=schema)
