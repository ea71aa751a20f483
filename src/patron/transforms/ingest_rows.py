"""The rows of an ingested file: typed, checked and classified by engine-neutral Ibis, then staged and written.

A file's text columns (:func:`raw_frame`) are coerced to the contract types and checked
rule by rule (:func:`checked_rows`), then classified against the file itself and the
warehouse (:func:`classified_rows`): each row ends up ``load``, ``unchanged`` (already in
the warehouse or repeated in the file) or rejected with a reason. Kept apart from
:mod:`patron.transforms.ingest` (the step) and :mod:`patron.transforms.ingest_rejects`
(what is rejected and logged) so each has one job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from patron.contract import Column, TableContract
from patron.engine import Warehouse
from patron.errors import DataContractError
from patron.transforms.readers import RawFile
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


# -- coercion and checks (engine-neutral) ---------------------------------------------
def parse_value(text: ir.StringValue, column: Column) -> ir.Value:
    """``text`` coerced to the column's contract type; NULL when blank or unparsable.

    Each type is gated by a pattern before the cast so that both engines accept
    exactly the same spellings (DuckDB rounds '1.5' to an integer, Spark reads '2024'
    as a timestamp, and both read 'inf').
    """
    kind = column.ibis_type
    clean = trim(text)
    if kind.is_string():
        return ibis.ifelse(is_blank(text), ibis.null(kind), text)
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
    blank = is_blank(text)
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
def staged(warehouse: Warehouse, expr: ir.Table) -> Iterator[ir.Table]:
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


def status_counts(warehouse: Warehouse, rows: ir.Table) -> dict[str, int]:
    """How many classified ``rows`` have each ``_status``: the counts an ingest reports."""
    counts = warehouse.to_pandas(rows.group_by("_status").aggregate(n=rows.count()))
    return {str(s): int(n) for s, n in zip(counts["_status"], counts["n"], strict=True)}


def write_rows(warehouse: Warehouse, contract: TableContract, rows: ir.Table, exists: bool) -> None:
    """Append the rows classified ``load`` to the contract table, in the contract's columns and types."""
    new = rows.filter(rows._status == LOAD).select(
        *[rows[c.name].cast(c.ibis_type).name(c.name) for c in contract]
    )
    # an absent table is created even when nothing is new, so it has the contract's schema
    if not exists or warehouse.count(new):
        warehouse.write(contract.name, new, mode="append")
