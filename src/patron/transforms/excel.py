"""Read an Excel workbook's sheet as rows of text, the way a person sees the cells.

Ingest parses every value from text itself, so a cell is written in the plain ISO
form ingest reads: integers without a decimal point (an id typed as 17850 is stored
as the float 17850.0 and must stay "17850"), other numbers with Excel's 15
significant digits in their shortest form, datetimes as ``2011-12-09T12:50:00``,
dates (datetimes at midnight: Excel keeps no separate date type) as ``2011-12-09``,
booleans as ``true``/``false`` and empty cells as the empty string.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from patron.errors import DataContractError

if TYPE_CHECKING:
    from openpyxl.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet


def sheet_rows(path: Path, data: bytes, *, sheet: str | int | None = None,
               skip_rows: int = 0) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells as text)`` for each row of the sheet that is not entirely empty.

    ``sheet`` is a name or a 0-based index (None: the first sheet); the first
    ``skip_rows`` rows are left out; row numbers are Excel's, from 1. Trailing empty
    cells are dropped, so rows may be shorter than the header. The workbook is closed
    when the iterator is exhausted or closed; use it inside ``contextlib.closing``.
    """
    from openpyxl import load_workbook  # imported here: only Excel inputs need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():  # openpyxl warns about styles and extensions it drops
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataContractError(f"{path}: not a readable Excel workbook ({reason})") from None
    try:
        worksheet = _worksheet(path, book, sheet)
        worksheet.reset_dimensions()  # the stored dimensions are often wrong; read what is there
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number <= skip_rows:
                continue
            cells = [cell_text(value) for value in row]
            while cells and not cells[-1].strip():
                cells.pop()
            if cells:
                yield number, cells
    finally:
        book.close()


def _worksheet(path: Path, book: Workbook, sheet: str | int | None) -> ReadOnlyWorksheet:
    names = book.sheetnames
    sheets = book.worksheets  # worksheets only, not chart sheets
    if sheet is None or isinstance(sheet, int):
        index = sheet or 0
        if not sheets or not -len(sheets) <= index < len(sheets):
            raise DataContractError(f"{path}: no sheet number {index} (0-based; sheets: {', '.join(names)})")
        return sheets[index]
    if sheet not in names:
        raise DataContractError(f"{path}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    return book[sheet]


def cell_text(value: object) -> str:
    """A cell's value as the text ingest parses (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _number_text(value: float) -> str:
    if not math.isfinite(value):
        return repr(value)
    # Excel shows 15 significant digits: 0.1 + 0.2 computed in a cell is 0.3 to its user
    shown = float(f"{value:.15g}")
    if shown.is_integer() and abs(shown) < 2**63:
        return str(int(shown))
    return repr(shown)
