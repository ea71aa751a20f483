"""Map an export to the data contract as ``[[sources]]`` in ``patron.toml`` says (docs/mapping.md).

``apply_mapping`` turns a file read by :func:`~patron.transforms.readers.read_raw` into
contract-named text columns: file columns renamed, constants filled in, values mapped
(``"EIRE"`` → ``"IE"``), ids, numbers and dates rewritten to the spellings ingest reads
(:mod:`~patron.transforms.spellings`), and rows matching an ``exclude`` rule set aside
with the rule as their reason. A flat transaction log (``layout = "transactions"``) is
split into ``orders`` (one row per order, from its first line) and ``order_lines``.

Every mapped row keeps its physical line and the file's own row (``records``), so that a
rejected row shows the user their own columns. Nothing here drops a row silently: rows
the mapping keeps out carry a reason in ``set_aside`` and ingest writes them to ``rejects``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from patron.config import SourceMapping
from patron.contract import CONTRACT, Column
from patron.engine import Warehouse
from patron.errors import DataContractError, EngineError
from patron.transforms.mapped import MappedFile, contract_file
from patron.transforms.readers import SUFFIXES, BadRow, RawFile, ReadOptions, as_text, read_raw
from patron.transforms.spellings import ID_COLUMNS, integral_ids, iso_instants, plain_numbers
from patron.transforms.transactions import split_transactions

EXCLUDED_PREFIX = "excluded by rule: "
_ASIDE_SCHEMA = pa.schema([("reason", pa.string()), ("field", pa.string()), ("value", pa.string()),
                           ("excluded", pa.bool_())])
_AMOUNT = Column("amount", "float64", "Line total: unit_price = amount / quantity.", non_negative=True)


# -- reading ---------------------------------------------------------------------------
ENGINE_TABLE = "table:"  # prefix of the pseudo path naming an engine table source in messages and rejects


def source_files(source: SourceMapping, project_dir: Path) -> list[Path]:
    """The files of ``source``: its path, or every readable file in its folder (hidden ones aside).

    An ``engine_table`` source has one pseudo path, ``table:<name>``, read by :func:`read_source`.
    """
    if source.engine_table is not None:
        return [Path(ENGINE_TABLE + source.engine_table)]
    path = source.resolved_path(project_dir)
    if path.is_dir():
        files = [p for p in sorted(path.iterdir())
                 if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES]
        if not files:
            raise DataContractError(f"source {source.name!r}: no readable file in {path}")
        return files
    if not path.exists():
        raise DataContractError(f"source {source.name!r}: {path} does not exist")
    return [path]


def read_source(path: Path | str, source: SourceMapping, warehouse: Warehouse | None = None) -> RawFile:
    """``path`` read with the source's format options, or the source's engine table through ``warehouse``."""
    if source.engine_table is not None:
        if warehouse is None:
            raise DataContractError(f"source {source.name!r}: reading table {source.engine_table} needs the warehouse")
        return read_engine_table(warehouse, source.engine_table)
    if source.delimiter == "whitespace":
        return read_whitespace(Path(path), encoding=source.encoding or "utf-8", skip_rows=source.skip_rows)
    options = ReadOptions(delimiter=source.delimiter, encoding=source.encoding, sheet=source.sheet,
                          skip_rows=source.skip_rows)
    return read_raw(path, options)


def read_engine_table(warehouse: Warehouse, name: str) -> RawFile:
    """Table ``name`` (``db.table`` or ``table``) of the warehouse's engine as text columns.

    For exports that live in the engine already (a Spark catalog table on Databricks, a
    DuckDB table): values become text as a Parquet file's do, lines are row numbers, and
    the digest is that of the rows, so an unchanged table is not ingested twice.
    """
    try:
        typed = warehouse.read_catalog_table(name)
    except EngineError as exc:
        raise DataContractError(f"{ENGINE_TABLE}{name}: cannot read the table ({_reason(exc)})") from None
    path = Path(ENGINE_TABLE + name)
    text = pa.table({column: as_text(path, column, typed[column]) for column in typed.column_names})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, text.schema) as writer:
        writer.write_table(text)
    digest = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    return RawFile(path, digest, text, pa.array(range(1, text.num_rows + 1), pa.int64()))


def _reason(exc: EngineError) -> str:
    """The first line of what the engine said when it could not read a table: the reason a user can act on."""
    cause = exc.__cause__ or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def read_whitespace(path: Path, *, encoding: str = "utf-8", skip_rows: int = 0) -> RawFile:
    """A file whose fields are separated by runs of blanks (fixed-width exports such as CDNOW's).

    Leading and trailing blanks and CR-LF line ends are ignored; blank lines are skipped;
    a line with another number of fields than the header becomes a bad row.
    """
    try:
        data = path.read_bytes()
        text = data.decode(encoding)
    except OSError as exc:
        raise DataContractError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataContractError(f"{path}: not readable as {encoding} ({exc.reason})") from None
    numbered = [(i, line.split()) for i, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1)
                if i > skip_rows and line.strip()]
    if not numbered:
        raise DataContractError(f"{path}: empty file, a header row is required")
    header = numbered[0][1]
    good = [(i, fields) for i, fields in numbered[1:] if len(fields) == len(header)]
    bad = [BadRow(i, fields, f"expected {len(header)} fields, found {len(fields)}")
           for i, fields in numbered[1:] if len(fields) != len(header)]
    columns = list(zip(*(fields for _, fields in good), strict=True)) if good else [()] * len(header)
    table = pa.table({name: pa.array(list(values), pa.string()) for name, values in zip(header, columns, strict=True)})
    lines = pa.array([i for i, _ in good], pa.int64())
    return RawFile(path, hashlib.sha256(data).hexdigest(), table, lines, bad)


# -- value maps ------------------------------------------------------------------------
def _key(text: pa.Array) -> pa.Array:
    """Values compared ignoring case, surrounding blanks and repeated inner blanks."""
    return pc.replace_substring_regex(pc.utf8_lower(pc.utf8_trim_whitespace(text)), r"\s+", " ")


@cache
def shipped_map(name: str) -> dict[str, str]:
    """A value map shipped with patron; ``country_names``: English names and ISO codes → ISO alpha-2."""
    text = resources.files("patron").joinpath("data", f"{name}.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return {**{r["code"]: r["code"] for r in rows}, **{r["name"]: r["code"] for r in rows}}


def map_values(text: pa.Array, mapping: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """``text`` through ``mapping`` (keys matched ignoring case and blanks), and which values it lacked."""
    keys = dict(zip(_key(pa.array(list(mapping), pa.string())).to_pylist(), mapping.values(), strict=True))
    position = pc.index_in(_key(text), value_set=pa.array(list(keys), pa.string()))
    mapped = pc.take(pa.array(list(keys.values()), pa.string()), position)
    blank = pc.equal(pc.utf8_trim_whitespace(text), "")
    missing = pc.and_(pc.is_null(position), pc.invert(blank))
    return pc.if_else(pc.is_null(position), text, mapped), missing


# -- exclude rules ---------------------------------------------------------------------
def _rule_text(rule: tuple) -> str:
    column, operator, *value = rule
    shown = "" if not value else f" {value[0]!r}" if not isinstance(value[0], tuple) else f" {list(value[0])!r}"
    return f"{column} {operator}{shown}"


def _as_number(text: pa.Array, source: SourceMapping) -> pa.Array:
    clean = plain_numbers(pc.utf8_trim_whitespace(text), decimal=source.decimal, thousands=source.thousands)
    ok = pc.match_substring_regex(clean, r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$")
    return pc.if_else(ok, pc.cast(pc.if_else(ok, clean, "0"), pa.float64()), pa.scalar(None, pa.float64()))


def rule_matches(text: pa.Array, rule: tuple, source: SourceMapping) -> pa.Array:
    """Which rows of the file column ``text`` match an ``exclude`` rule (never NULL)."""
    _, operator, *rest = rule
    value = rest[0] if rest else None
    clean = pc.utf8_trim_whitespace(text)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    compare = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
               ">=": pc.greater_equal}
    if operator in compare:
        left = _as_number(text, source) if numeric else clean
        hit = compare[operator](left, value if numeric else str(value))
    elif operator in ("in", "not in"):
        items = list(value)
        if items and all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            hit = pc.is_in(_as_number(text, source), value_set=pa.array([float(v) for v in items]))
        else:
            hit = pc.is_in(clean, value_set=pa.array([str(v) for v in items], pa.string()))
        hit = pc.invert(hit) if operator == "not in" else hit
    elif operator == "starts with":
        hit = pc.starts_with(clean, str(value))
    elif operator == "ends with":
        hit = pc.ends_with(clean, str(value))
    elif operator == "contains":
        hit = pc.match_substring(clean, str(value))
    else:
        hit = pc.equal(clean, "") if operator == "is empty" else pc.not_equal(clean, "")
    return pc.fill_null(hit, False)


def _excluded(raw: RawFile, source: SourceMapping) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per row, the first ``exclude`` rule it matches: the reason, the file column and its value (else NULL)."""
    n = raw.table.num_rows
    reason, fields, values = pa.nulls(n, pa.string()), pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
    for rule in reversed(source.exclude):
        column = rule[0]
        if column not in raw.table.column_names:
            raise DataContractError(f"source {source.name!r}: exclude rule on {column!r}, which is not a column "
                                    f"of {raw.path} (columns: {', '.join(raw.table.column_names)})")
        text = pc.fill_null(raw.table[column].combine_chunks(), "")
        hit = rule_matches(text, rule, source)
        reason = pc.if_else(hit, EXCLUDED_PREFIX + _rule_text(rule), reason)
        fields = pc.if_else(hit, column, fields)
        values = pc.if_else(hit, text, values)
    return reason, fields, values


# -- columns ---------------------------------------------------------------------------
def contract_columns(source: SourceMapping) -> dict[str, Column]:
    """The contract columns a source can fill, by name (a flat log adds ``amount``)."""
    columns = {c.name: c for t in source.tables for c in CONTRACT[t]}
    return {**columns, "amount": _AMOUNT} if source.layout == "transactions" else columns


def resolve_columns(raw: RawFile, source: SourceMapping) -> dict[str, str]:
    """Contract column → file column: ``[sources.columns]``, else a file column of the same name."""
    names = raw.table.column_names
    by_lower: dict[str, list[str]] = {}
    for name in names:
        by_lower.setdefault(name.lower(), []).append(name)
    origin: dict[str, str] = {}
    for column in contract_columns(source):
        if column in source.columns:
            wanted = source.columns[column]
            if wanted not in names:
                raise DataContractError(f"source {source.name!r}: column {wanted!r} (mapped to {column}) is not in "
                                        f"{raw.path}; its columns are: {', '.join(names)}")
            origin[column] = wanted
        elif column not in source.constants and (column in names or len(by_lower.get(column, ())) == 1):
            origin[column] = column if column in names else by_lower[column][0]
    return origin


def _text_column(raw: RawFile, source: SourceMapping, column: Column, origin: dict[str, str]) -> pa.Array | None:
    n = raw.table.num_rows
    if column.name in origin:
        return pc.fill_null(raw.table[origin[column.name]].combine_chunks(), "")
    if column.name in source.constants:
        return pa.array([source.constants[column.name]] * n, pa.string())
    if column.name == "source":
        return pa.array([source.name] * n, pa.string())
    return None


def _spelled(text: pa.Array, column: Column, source: SourceMapping, where: str, kept: pa.Array,
             warnings: list[str]) -> pa.Array:
    """``text`` in the spelling ingest reads for the column's type."""
    kind = column.ibis_type
    if kind.is_integer() or kind.is_floating():
        if source.decimal != "." or source.thousands:
            text = plain_numbers(text, decimal=source.decimal, thousands=source.thousands)
        return integral_ids(text) if kind.is_integer() else text
    if kind.is_timestamp() or kind.is_date():
        written, notes = iso_instants(text, kind="timestamp" if kind.is_timestamp() else "date",
                                      date_format=source.date_format, time_zone=source.time_zone, where=where,
                                      among=kept)
        warnings.extend(notes)
        return written
    return integral_ids(text) if column.name in ID_COLUMNS else text


def mapped_columns(raw: RawFile, source: SourceMapping
                   ) -> tuple[dict[str, pa.Array], dict[str, str], pa.Table, list[str]]:
    """The contract columns the source fills, their origin, the rows set aside so far and warnings."""
    origin = resolve_columns(raw, source)
    warnings: list[str] = []
    reason, fields, values = _excluded(raw, source)
    kept = pc.is_null(reason)
    columns: dict[str, pa.Array] = {}
    for column in contract_columns(source).values():
        text = _text_column(raw, source, column, origin)
        if text is None:
            continue
        where = f"{raw.path}: column {origin.get(column.name, column.name)!r} ({column.name})"
        if column.name in source.values:
            text, reason, fields, values = _through_map(text, column.name, source, kept, where, warnings,
                                                        (reason, fields, values))
        columns[column.name] = _spelled(text, column, source, where, kept, warnings)
    is_excluded = pc.fill_null(pc.starts_with(reason, EXCLUDED_PREFIX), False)
    aside = pa.table([reason, fields, values, is_excluded], schema=_ASIDE_SCHEMA)
    return columns, origin, aside, warnings


def _through_map(text: pa.Array, name: str, source: SourceMapping, kept: pa.Array, where: str,
                 warnings: list[str], aside: tuple[pa.Array, pa.Array, pa.Array]
                 ) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    spec = source.values[name]
    mapping = shipped_map(spec) if isinstance(spec, str) else spec
    label = f"the value map {spec}" if isinstance(spec, str) else "its value map"
    mapped, missing = map_values(text, mapping)
    missing = pc.and_(missing, kept)
    reason, fields, values = aside
    count = pc.sum(missing).as_py() or 0
    if count:
        unknown = pd.Series(text.filter(missing).to_pylist()).value_counts()
        listed = ", ".join(f"{v!r} ({k:,})" for v, k in unknown.head(5).items())
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        done = {"keep": "kept as they are", "null": "left empty", "reject": "rejected"}[source.unmapped]
        warnings.append(f"{where}: {count:,} value(s) not in {label}, {done}: {listed}{more}")
    if source.unmapped == "null":
        mapped = pc.if_else(missing, "", mapped)
    elif source.unmapped == "reject":
        why = pc.binary_join_element_wise(f"{name} '", text, f"' not in {label}", "")
        reason = pc.if_else(pc.and_(missing, pc.is_null(reason)), why, reason)
        fields = pc.if_else(pc.and_(missing, pc.is_null(fields)), name, fields)
        values = pc.if_else(pc.and_(missing, pc.is_null(values)), text, values)
    return mapped, reason, fields, values


# -- the whole mapping -----------------------------------------------------------------
def apply_mapping(raw: RawFile, source: SourceMapping) -> list[MappedFile]:
    """``raw`` (a file of ``source``) as contract tables: one, or orders and order_lines of a flat log."""
    columns, origin, aside, warnings = mapped_columns(raw, source)
    raw = replace(raw, warnings=[*raw.warnings, *warnings])
    if source.layout == "transactions":
        return split_transactions(raw, source, columns, origin, aside)
    return [contract_file(source.tables[0], raw, columns, raw.table, aside, origin)]
