"""Read a CSV or Parquet file as raw text, keeping where every row came from.

Ingest coerces and checks values itself, so that every bad value gets a reason of
patron's own; readers therefore hand back every column as a string, with the
physical line of each row (CSV: the header is line 1; Parquet: the row number from 1).
A file that cannot be read at all raises a one-line ``DataContractError`` naming it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.errors import DataContractError

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class BadRow:
    """A CSV row that could not be split into the header's fields."""

    line: int
    fields: list[str]
    reason: str


@dataclass
class RawFile:
    """A file read as text: string columns, the source line of each row and its digest."""

    path: Path
    sha256: str
    table: pa.Table
    lines: pa.Array
    bad_rows: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_raw(path: Path | str) -> RawFile:
    """Read ``path`` (CSV or Parquet, by suffix) into string columns with line numbers."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataContractError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, data, digest, delimiter="\t" if suffix == ".tsv" else ",")
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, data, digest)
    accepted = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise DataContractError(f"{path}: not a CSV or Parquet file (accepted suffixes: {accepted})")


# -- CSV ------------------------------------------------------------------------------
def _read_csv(path: Path, data: bytes, digest: str, *, delimiter: str) -> RawFile:
    if not data.strip():
        raise DataContractError(f"{path}: empty file, a header row is required")
    invalid: list[str] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text)
        return "skip"

    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_invalid)
    try:
        names = pacsv.open_csv(pa.BufferReader(data), parse_options=parse).schema.names
        _check_header(path, names)
        convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                       strings_can_be_null=False)
        table = pacsv.read_csv(pa.BufferReader(data), parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{path}: not a readable CSV file ({_first_line(exc)})") from None
    table = table.rename_columns([n.strip() for n in names])
    lines = _fast_lines(table, data, names) if not invalid else None
    if lines is not None:
        return RawFile(path, digest, table, lines)
    return _with_scanned_lines(path, digest, table, data, delimiter)


def _check_header(path: Path, names: list[str]) -> None:
    stripped = [n.strip() for n in names]
    if any(not n for n in stripped):
        raise DataContractError(f"{path}: the header has an empty column name")
    seen: set[str] = set()
    for name in stripped:
        if name in seen:
            raise DataContractError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)


def _fast_lines(table: pa.Table, data: bytes, names: list[str]) -> pa.Array | None:
    """Physical line of each record from the newlines quoted inside values, or None.

    Record i starts after the header's lines, the i records before it and the
    newlines quoted inside them. The arithmetic holds only when the file's line count
    agrees with it; blank lines or bare carriage returns break that, and return None.
    """
    inner = pa.array([0] * table.num_rows, pa.int64())
    for column in table.columns:
        inner = pc.add(inner, pc.count_substring(column, "\n").cast(pa.int64()).fill_null(0))
    header_lines = 1 + sum(n.count("\n") for n in names)
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    expected = header_lines + table.num_rows + (pc.sum(inner).as_py() or 0)
    if expected != physical:
        return None
    before = pc.subtract(pc.cumulative_sum(inner), inner)
    rank = pa.array(range(table.num_rows), pa.int64())
    lines = pc.add(pc.add(before, rank), header_lines + 1)
    return lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines


def _with_scanned_lines(path: Path, digest: str, table: pa.Table, data: bytes, delimiter: str) -> RawFile:
    """Scan the file with Python's csv module to place every record and find the broken ones.

    Slower than the arithmetic of ``_fast_lines``; used only when a file has blank
    lines, bare carriage returns or rows with the wrong number of fields.
    """
    width = table.num_columns
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    good: list[int] = []
    bad: list[BadRow] = []
    previous_end = 0
    for record in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if start == 1 or not record:  # the header, or a blank line
            continue
        if len(record) == width:
            good.append(start)
        else:
            bad.append(BadRow(start, record, f"expected {width} fields, found {len(record)}"))
    warnings: list[str] = []
    if len(good) != table.num_rows:  # the two parsers disagree: fall back to record numbers
        good = list(range(2, table.num_rows + 2))
        warnings.append(f"{path}: could not place rows on physical lines; line = record number + 1")
    return RawFile(path, digest, table, pa.array(good, pa.int64()), bad, warnings)


# -- Parquet --------------------------------------------------------------------------
def _read_parquet(path: Path, data: bytes, digest: str) -> RawFile:
    try:
        typed = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    columns = {}
    for name, column in zip(typed.column_names, typed.columns, strict=True):
        columns[name.strip()] = _as_text(path, name, column)
    table = pa.table(columns) if columns else typed
    _check_header(path, typed.column_names)
    lines = pa.array(range(1, table.num_rows + 1), pa.int64())
    return RawFile(path, digest, table, lines)


def _as_text(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A typed Parquet column as the text ingest parses; instants are written in UTC."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind):
        column = column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
        if kind.tz is not None:
            column = column.cast(pa.timestamp("us", tz="UTC"))
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataContractError(f"{path}: column {name!r} has type {kind}, not a plain value") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
