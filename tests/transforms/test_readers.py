"""File readers on files as people export them: delimiters, encodings, Excel, binary files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.config import Settings
from patron.engine import Warehouse, connect
from patron.errors import DataContractError, PatronError
from patron.pipeline import expand_paths
from patron.transforms.excel import cell_text
from patron.transforms.ingest import ingest_file
from patron.transforms.readers import ReadOptions, detect_delimiter, read_raw

ORDERS_HEADER = ["order_id", "source", "customer_id", "email", "loyalty_id", "ordered_at", "channel", "country",
                 "store_id", "currency", "note"]
ORDERS = [
    ["o1", "web", "c1", "a@x.io", "", "2024-01-05T10:00:00Z", "online", "DE", "", "EUR", "Café"],
    ["o2", "pos", "", "", "L9", "2024-01-06 09:30:00+01:00", "store", "FR", "s1", "EUR", "£3.50"],
]


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    wh = connect(Settings(project_dir=tmp_path / "project"))
    yield wh
    wh.close()


def write_text(path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8",
               newline: str = "\n", before: str = "") -> Path:
    text = before + newline.join(delimiter.join(row) for row in rows) + newline
    path.write_bytes(text.encode(encoding))
    return path


def values(path: Path, options: ReadOptions | None = None) -> list[list[str]]:
    raw = read_raw(path, options)
    return [list(row.values()) for row in raw.table.to_pylist()]


# -- 1. delimiter and byte-order mark --------------------------------------------------
def test_utf8_bom_semicolon_file_reads_named_columns_and_ingests(duck: Warehouse, tmp_path: Path) -> None:
    rows = [ORDERS[0], [*ORDERS[1][:-1], "1,50"]]  # a decimal comma in a value
    path = write_text(tmp_path / "orders.csv", [ORDERS_HEADER, *rows], delimiter=";",
                      encoding="utf-8-sig", newline="\r\n")
    raw = read_raw(path)
    assert raw.table.column_names == ORDERS_HEADER  # no '\ufeff' glued to the first name
    assert values(path) == rows
    assert raw.lines.to_pylist() == [2, 3]
    assert raw.warnings == [f"{path}: delimiter ';' detected"]
    result = ingest_file(duck, path)
    assert (result.loaded, result.rejected) == (2, 0)


@pytest.mark.parametrize(("name", "delimiter", "warned"), [
    ("orders.csv", ",", False), ("orders.txt", "\t", True), ("orders.csv", "|", True),
    ("orders.tsv", "\t", False),  # the suffix says tab: nothing was guessed
])
def test_delimiter_is_detected_and_named_when_not_a_comma(tmp_path: Path, name: str, delimiter: str,
                                                         warned: bool) -> None:
    path = write_text(tmp_path / name, [ORDERS_HEADER, *ORDERS], delimiter=delimiter)
    raw = read_raw(path)
    assert raw.table.column_names == ORDERS_HEADER
    assert raw.warnings == ([f"{path}: delimiter {delimiter!r} detected"] if warned else [])


def test_explicit_delimiter_wins_over_detection_and_suffix(tmp_path: Path) -> None:
    path = write_text(tmp_path / "orders.tsv", [["a;b", "c"], ["1;2", "3"]], delimiter="\t")
    assert values(path, ReadOptions(delimiter=";")) == [["1", "2\t3"]]
    with pytest.raises(DataContractError, match="one character"):
        read_raw(path, ReadOptions(delimiter=";;"))


def test_detection_prefers_the_delimiter_rows_agree_with() -> None:
    # commas in every row but only semicolons in the header: a semicolon file with decimal commas
    assert detect_delimiter("id;amount\n1;1,5\n2;2,5\n") == ";"
    # a comma file whose header names hold a '|' still splits on commas
    assert detect_delimiter("id,a|b,c\n1,x|y,2\n") == ","
    assert detect_delimiter("only_one_column\n1\n") == ","


def test_rows_with_too_many_fields_keep_physical_lines_with_a_detected_delimiter(tmp_path: Path) -> None:
    path = write_text(tmp_path / "orders.csv", [["a", "b"], ["1", "2"], [], ["3", "4", "5"], ["6", "7"]],
                      delimiter=";")
    raw = read_raw(path)
    assert raw.lines.to_pylist() == [2, 5]  # a blank line (3) and a broken row (4) in between
    assert [(bad.line, bad.fields) for bad in raw.bad_rows] == [(4, ["3", "4", "5"])]


# -- 2. encodings -----------------------------------------------------------------------
def test_cp1252_file_reads_with_a_warning(tmp_path: Path) -> None:
    path = write_text(tmp_path / "orders.csv", [ORDERS_HEADER, *ORDERS], encoding="cp1252")
    raw = read_raw(path)
    assert values(path) == ORDERS
    assert len(raw.warnings) == 1 and "cp1252" in raw.warnings[0] and "line 2" in raw.warnings[0]


def test_explicit_encoding_is_honoured(tmp_path: Path) -> None:
    path = write_text(tmp_path / "orders.csv", [["name"], ["Ærø ¤"]], encoding="latin-1")
    raw = read_raw(path, ReadOptions(encoding="latin-1"))
    assert raw.table.column("name").to_pylist() == ["Ærø ¤"] and raw.warnings == []
    with pytest.raises(DataContractError, match=r"not valid utf-8 text \(line 2"):
        read_raw(path, ReadOptions(encoding="utf-8"))
    with pytest.raises(DataContractError, match="unknown encoding 'klingon'"):
        read_raw(path, ReadOptions(encoding="klingon"))


def test_utf16_with_byte_order_mark_reads(tmp_path: Path) -> None:
    """Excel's "Unicode text" export: UTF-16 with a byte-order mark, tab-separated."""
    path = write_text(tmp_path / "orders.txt", [ORDERS_HEADER, *ORDERS], delimiter="\t", encoding="utf-16",
                      newline="\r\n")
    assert values(path) == ORDERS
    assert read_raw(path).lines.to_pylist() == [2, 3]


# -- 3. binary files and paths that do not exist -----------------------------------------
def _xlsx_bytes(tmp_path: Path) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(ORDERS_HEADER)
    book.save(tmp_path / "book.xlsx")
    return (tmp_path / "book.xlsx").read_bytes()


BINARIES = {
    "random": lambda _: os.urandom(3000),
    "png": lambda _: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(200),
    "xlsx": _xlsx_bytes,
    "nul": lambda _: b"order_id,source\n" + b"o1,\x00web\n" * 10,
}


@pytest.mark.parametrize("kind", sorted(BINARIES))
def test_binary_file_named_csv_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(BINARIES[kind](tmp_path))
    with pytest.raises(DataContractError) as caught:
        read_raw(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a text CSV file (it looks ")
    assert "\n" not in message and message.isprintable()


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readers") / "shop"
    subprocess.run([_patron(), "init", str(folder)], check=True, capture_output=True)
    return folder


def _patron() -> str:
    return shutil.which("patron", path=str(Path(sys.executable).parent)) or "patron"


@pytest.mark.parametrize("kind", ["random", "xlsx"])
def test_cli_prints_one_line_for_a_binary_csv(cli_project: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(BINARIES[kind](tmp_path))
    done = subprocess.run([_patron(), "ingest", str(path), "--table", "orders", "--project", str(cli_project)],
                          capture_output=True, text=True, errors="replace")
    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1, done.stderr  # no 'Exception ignored' traceback
    assert "not a text CSV file (it looks" in done.stderr


def test_cli_names_a_path_that_does_not_exist(cli_project: Path) -> None:
    done = subprocess.run([_patron(), "ingest", "nothere/", "--project", str(cli_project)],
                          capture_output=True, text=True, cwd=cli_project)
    assert done.returncode != 0
    assert done.stderr.strip() == "error: nothere: no such file or folder"


def test_expand_paths_takes_every_readable_suffix(tmp_path: Path) -> None:
    for name in ["orders.csv", "customers.tsv", "products.txt", "order_lines.xlsx", "returns.parquet",
                 "orders_notes.md", "truth_orders.csv", "~$customers.xlsx", "unknown.csv"]:
        (tmp_path / name).write_text("x")
    found = {p.name for p in expand_paths([tmp_path])}
    assert found == {"orders.csv", "customers.tsv", "products.txt", "order_lines.xlsx", "returns.parquet"}
    with pytest.raises(PatronError, match="missing: no such file or folder"):
        expand_paths([tmp_path / "missing"])


# -- 4. Excel ---------------------------------------------------------------------------
def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_excel_cells_read_as_the_text_a_person_sees(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", {"Orders": [
        ["id", "at", "day", "price", "flag", "note", None, None],  # trailing empty header cells: formatting
        [17850.0, dt.datetime(2011, 12, 9, 12, 50), dt.datetime(2011, 12, 9), 0.1 + 0.2, True, None],
        [],  # an empty row is left out
        [12, dt.datetime(2011, 12, 9, 8, 1, 2, 500000), dt.date(2011, 12, 10), 2.55, False, "  spaced "],
    ]})
    raw = read_raw(path)
    assert raw.table.column_names == ["id", "at", "day", "price", "flag", "note"]
    assert values(path) == [
        ["17850", "2011-12-09T12:50:00", "2011-12-09", "0.3", "true", ""],
        ["12", "2011-12-09T08:01:02.500000", "2011-12-10", "2.55", "false", "  spaced "],
    ]
    assert raw.lines.to_pylist() == [2, 4]  # Excel's row numbers


@pytest.mark.parametrize(("value", "text"), [
    (17850.0, "17850"), (-3.0, "-3"), (1.5, "1.5"), (12.299999999999999, "12.3"), (1e-05, "1e-05"),
    (7, "7"), (False, "false"), (dt.time(12, 30), "12:30:00"), ("007", "007"), (None, ""),
])
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_excel_sheet_choice_skip_rows_and_wide_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", {
        "Summary": [["total"], [3]],
        "Data": [["Sales report"], ["exported 2024-01-31"], ["a", "b"], [1, 2], [3, 4, 5], [None, 6]],
    })
    assert values(path) == [["3"]]  # the first sheet by default
    for sheet in ("Data", 1):
        raw = read_raw(path, ReadOptions(sheet=sheet, skip_rows=2))
        assert [list(r.values()) for r in raw.table.to_pylist()] == [["1", "2"], ["", "6"]]
        assert raw.lines.to_pylist() == [4, 6]
        assert [(bad.line, bad.fields) for bad in raw.bad_rows] == [(5, ["3", "4", "5"])]
    with pytest.raises(DataContractError, match=r"no sheet named 'Nope' \(sheets: Summary, Data\)"):
        read_raw(path, ReadOptions(sheet="Nope"))
    with pytest.raises(DataContractError, match="no sheet number 5"):
        read_raw(path, ReadOptions(sheet=5))


def test_excel_orders_ingest(duck: Warehouse, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", {"Sheet1": [ORDERS_HEADER, *ORDERS]})
    result = ingest_file(duck, path)
    assert (result.loaded, result.rejected) == (2, 0)


def test_not_an_excel_workbook(tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_text("order_id\no1\n")
    with pytest.raises(DataContractError, match="not a readable Excel workbook"):
        read_raw(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(DataContractError, match="not a readable Excel workbook"):
        read_raw(path)


# -- 5. Parquet -------------------------------------------------------------------------
def test_parquet_integral_floats_read_without_a_decimal_point(tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"id": pa.array([17850.0, 12.5, None], pa.float64())}), path)
    assert read_raw(path).table.column("id").to_pylist() == ["17850", "12.5", None]


def test_parquet_of_wrong_types_reads_as_text_and_ingest_rejects_values(duck: Warehouse, tmp_path: Path) -> None:
    columns = {name: pa.array([value for value in column], pa.string())
               for name, column in zip(ORDERS_HEADER, zip(*ORDERS, strict=True), strict=True)}
    columns["ordered_at"] = pa.array([20240105, 20240106], pa.int64())  # a number, not a timestamp
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table(columns), path)
    assert read_raw(path).table.column("ordered_at").to_pylist() == ["20240105", "20240106"]
    result = ingest_file(duck, path)
    assert (result.loaded, result.rejected) == (0, 2)


# -- 6. lines before the header ------------------------------------------------------------
def test_skip_rows_keeps_physical_lines(tmp_path: Path) -> None:
    title = "Orders report;;\nexported 2024-01-31\n"
    path = write_text(tmp_path / "orders.csv", [["a", "b"], ["1", "2"], ["3", "4"]], before=title)
    raw = read_raw(path, ReadOptions(skip_rows=2))
    assert raw.table.column_names == ["a", "b"] and raw.warnings == []
    assert raw.lines.to_pylist() == [4, 5]
    # the slow path (a blank line) counts the skipped lines too
    path = write_text(tmp_path / "orders.csv", [["a", "b"], ["1", "2"], [], ["3", "4"]], before=title)
    assert read_raw(path, ReadOptions(skip_rows=2)).lines.to_pylist() == [4, 6]
    with pytest.raises(DataContractError, match="empty file after skipping 2 line"):
        read_raw(write_text(tmp_path / "orders.csv", [["title"], ["more"]]), ReadOptions(skip_rows=5))
