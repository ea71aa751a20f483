"""Read a CSV, Excel or Parquet file as raw text, keeping where every row came from.

Ingest coerces and checks values itself, so that every bad value gets a reason of
patron's own; readers therefore hand back every column as a string, with the
physical line of each row (CSV: the header is line 1, lines skipped before it
counted; Excel: the sheet's row number; Parquet: the row number from 1).
A file that cannot be read at all raises a one-line ``DataContractError`` naming it.

CSV files are read as people export them: the delimiter is detected (``,;\t|``)
unless given, a byte-order mark is dropped, and a file that is not UTF-8 is read
as cp1252 (Excel's "CSV" on Western Windows) with a warning, unless an encoding is
given. Everything is transcoded to UTF-8 before parsing, so line arithmetic and
the row scanner work on the same bytes as pyarrow.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.errors import DataContractError
from patron.transforms.excel import sheet_rows

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx",)
SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024  # the sample the delimiter is detected from
_SNIFF_ROWS = 100
_PROBE_BYTES = 4096  # the start of the file that tells text from binary
_SIGNATURES = {  # what a binary file named .csv usually is
    b"PK\x03\x04": "an Excel workbook or a zip archive (name Excel files .xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls or other Office file (save it as .xlsx or CSV)",
    b"PAR1": "a Parquet file (name it .parquet)",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file, for exports the defaults cannot read (from ``patron.toml``).

    Attributes
    ----------
    delimiter : CSV field separator; None detects one of ``, ; tab |`` (``.tsv``: tab).
    encoding : CSV text encoding (any Python codec name); None reads UTF-8, with or
        without a byte-order mark, and falls back to cp1252 with a warning.
    sheet : Excel sheet name or 0-based index; None is the first sheet.
    skip_rows : lines (CSV) or rows (Excel) before the header to skip, such as the
        report titles BI tools write; line numbers stay those of the file.
    """

    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    skip_rows: int = 0


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


def read_raw(path: Path | str, options: ReadOptions | None = None) -> RawFile:
    """Read ``path`` (CSV, Excel or Parquet, by suffix) into string columns with line numbers."""
    path = Path(path)
    options = options or ReadOptions()
    _check_options(path, options)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataContractError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        tab = "\t" if suffix == ".tsv" else None
        return _read_csv(path, data, digest, options, delimiter=options.delimiter or tab)
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, data, digest, options)
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, data, digest)
    if suffix == ".xls":
        raise DataContractError(f"{path}: the old Excel .xls format is not read; save the sheet as .xlsx or CSV")
    raise DataContractError(f"{path}: not a CSV or Parquet file, nor an Excel workbook "
                            f"(accepted suffixes: {', '.join(SUFFIXES)})")


def _check_options(path: Path, options: ReadOptions) -> None:
    if options.delimiter is not None and (len(options.delimiter) != 1 or options.delimiter in "\"\r\n"):
        raise DataContractError(f"{path}: the delimiter must be one character such as ';' or '\\t', "
                                f"not {options.delimiter!r}")
    if options.skip_rows < 0:
        raise DataContractError(f"{path}: skip_rows must be 0 or more, not {options.skip_rows}")


# -- CSV ------------------------------------------------------------------------------
def _read_csv(path: Path, data: bytes, digest: str, options: ReadOptions, *, delimiter: str | None) -> RawFile:
    warnings: list[str] = []
    text = _utf8(path, data, options.encoding, warnings)
    skipped, text = _skip_lines(text, options.skip_rows)
    if not text.strip():
        after = f" after skipping {skipped} line(s)" if skipped else ""
        raise DataContractError(f"{path}: empty file{after}, a header row is required")
    if delimiter is None:
        delimiter = detect_delimiter(text[:_SNIFF_BYTES].decode("utf-8", "ignore"))
        if delimiter != ",":
            warnings.append(f"{path}: delimiter {delimiter!r} detected")
    invalid: list[str] = []

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text)
        return "skip"

    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_invalid)
    try:
        # a streaming reader left to the garbage collector after an error prints noise: close it
        with pacsv.open_csv(pa.BufferReader(text), parse_options=parse) as reader:
            names = reader.schema.names
        _check_header(path, names)
        convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                       strings_can_be_null=False)
        table = pacsv.read_csv(pa.BufferReader(text), parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{path}: not a readable CSV file ({_first_line(exc)})") from None
    table = table.rename_columns([n.strip() for n in names])
    lines = _fast_lines(table, text, names) if not invalid else None
    if lines is not None:
        return RawFile(path, digest, table, pc.add(lines, skipped), warnings=warnings)
    return _with_scanned_lines(path, digest, table, text, delimiter, skipped, warnings)


def _utf8(path: Path, data: bytes, encoding: str | None, warnings: list[str]) -> bytes:
    """``data`` as UTF-8 without a byte-order mark, from ``encoding`` or the best guess.

    Without an encoding: UTF-16 with its byte-order mark (Excel's "Unicode text"),
    else UTF-8, else cp1252 with a warning. A binary file is refused before any
    guess, so that its bytes never reach the parser or the error message.
    """
    if encoding is not None:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise DataContractError(f"{path}: unknown encoding {encoding!r}") from None
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    else:
        data = data.removeprefix(codecs.BOM_UTF8)
        _refuse_binary(path, data)
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise DataContractError(f"{path}: not a text CSV file (neither UTF-8 nor cp1252 text, "
                                        f"line {line}); give its encoding") from None
            warnings.append(f"{path}: not UTF-8 (line {line}); read as cp1252 (Windows Western European), "
                            "give the encoding if that is wrong")
            return text.encode("utf-8")
    if not codec.startswith(("utf-16", "utf-32")):
        _refuse_binary(path, data)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataContractError(f"{path}: not valid {encoding or codec} text (line {line}: {exc.reason})") from None
    return text.removeprefix("\ufeff").encode("utf-8")


def _refuse_binary(path: Path, data: bytes) -> None:
    """Raise when the start of ``data`` shows a binary file rather than text."""
    probe = data[:_PROBE_BYTES]
    for signature, what in _SIGNATURES.items():
        if probe.startswith(signature):
            raise DataContractError(f"{path}: not a text CSV file (it looks like {what})")
    if b"\x00" in probe:
        raise DataContractError(f"{path}: not a text CSV file (it looks binary: NUL bytes in the first 4 KiB)")
    controls = sum(probe.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    if controls > len(probe) // 20:
        raise DataContractError(f"{path}: not a text CSV file "
                                "(it looks binary: control characters in the first 4 KiB)")


def _skip_lines(data: bytes, count: int) -> tuple[int, bytes]:
    """``data`` after its first ``count`` physical lines, and how many lines that was."""
    start = 0
    for skipped in range(count):
        end = data.find(b"\n", start)
        if end < 0:
            return skipped + (start < len(data)), b""
        start = end + 1
    return count, data[start:]


def detect_delimiter(sample: str) -> str:
    """The separator of ``,;\\t|`` that splits the sample's rows like its header, ',' if none.

    Each candidate must give the header more than one column; the one whose rows
    agree with the header's width most often wins, then the one giving more columns,
    then the earlier in ``DELIMITERS``. A semicolon file with decimal commas gives a
    one-column header for ',' and so is never taken for a comma file.
    """
    sample = sample[: sample.rfind("\n") + 1] or sample  # drop a cut last line
    best, best_score = ",", (0.0, 0)
    for candidate in DELIMITERS:
        rows = _sample_rows(sample, candidate)
        if not rows or len(rows[0]) < 2:
            continue
        width, body = len(rows[0]), rows[1:]
        agree = sum(len(row) == width for row in body) / len(body) if body else 1.0
        if (agree, width) > best_score:
            best, best_score = candidate, (agree, width)
    return best


def _sample_rows(sample: str, delimiter: str) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if row:
                rows.append(row)
            if len(rows) >= _SNIFF_ROWS:
                break
    except csv.Error:  # a quoted value cut by the end of the sample
        pass
    return rows


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
    """Line of each record within ``data`` from the newlines quoted inside values, or None.

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


def _with_scanned_lines(path: Path, digest: str, table: pa.Table, data: bytes, delimiter: str,
                        skipped: int, warnings: list[str]) -> RawFile:
    """Scan the file with Python's csv module to place every record and find the broken ones.

    Slower than the arithmetic of ``_fast_lines``; used only when a file has blank
    lines, bare carriage returns or rows with the wrong number of fields. ``data``
    is the UTF-8 text pyarrow parsed, after the ``skipped`` lines.
    """
    width = table.num_columns
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter)
    good: list[int] = []
    bad: list[BadRow] = []
    previous_end = 0
    header_seen = False
    for record in reader:
        start, previous_end = skipped + previous_end + 1, reader.line_num
        if not record:  # a blank line
            continue
        if not header_seen:
            header_seen = True
        elif len(record) == width:
            good.append(start)
        else:
            bad.append(BadRow(start, record, f"expected {width} fields, found {len(record)}"))
    if len(good) != table.num_rows:  # the two parsers disagree: fall back to record numbers
        good = list(range(skipped + 2, skipped + table.num_rows + 2))
        warnings.append(f"{path}: could not place rows on physical lines; line = record number + 1")
    return RawFile(path, digest, table, pa.array(good, pa.int64()), bad, warnings)


# -- Excel ----------------------------------------------------------------------------
def _read_excel(path: Path, data: bytes, digest: str, options: ReadOptions) -> RawFile:
    """The sheet's first non-empty row (after ``skip_rows``) is the header; empty rows are left out."""
    with closing(sheet_rows(path, data, sheet=options.sheet, skip_rows=options.skip_rows)) as rows:
        first = next(rows, None)
        if first is None:
            raise DataContractError(f"{path}: the sheet is empty, a header row is required")
        names = first[1]  # trailing empty header cells (formatting) are already dropped
        _check_header(path, names)
        width = len(names)
        columns: list[list[str]] = [[] for _ in names]
        lines: list[int] = []
        bad: list[BadRow] = []
        for line, cells in rows:
            if len(cells) > width:
                bad.append(BadRow(line, cells, f"expected {width} fields, found {len(cells)}"))
                continue
            cells.extend([""] * (width - len(cells)))
            for column, value in zip(columns, cells, strict=True):
                column.append(value)
            lines.append(line)
    table = pa.table({name.strip(): pa.array(column, pa.string()) for name, column in zip(names, columns, strict=True)})
    return RawFile(path, digest, table, pa.array(lines, pa.int64()), bad)


# -- Parquet --------------------------------------------------------------------------
def _read_parquet(path: Path, data: bytes, digest: str) -> RawFile:
    try:
        typed = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataContractError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    columns = {}
    for name, column in zip(typed.column_names, typed.columns, strict=True):
        columns[name.strip()] = as_text(path, name, column)
    table = pa.table(columns) if columns else typed
    _check_header(path, typed.column_names)
    lines = pa.array(range(1, table.num_rows + 1), pa.int64())
    return RawFile(path, digest, table, lines)


def as_text(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
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
