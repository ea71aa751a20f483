"""Excel workbooks people work in: tables they can filter, native charts, numbers stored as numbers.

Written with XlsxWriter (imported on first use). A workbook is never re-saved with openpyxl,
which drops sparklines and parts of charts.

:class:`Workbook` holds the formats of one file (money in the reporting currency, counts,
shares, dates) and writes a DataFrame as an Excel table (:meth:`Workbook.table`): a header
row frozen, filter buttons, each column formatted by its :data:`Kind`, widths to fit. It
returns a :class:`TableRef`, which charts and formulas use to point at a column.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

#: How a column is shown: money in the reporting currency, a count, a share (as a percentage), another
#: number, a date, or text.
Kind = Literal["money", "count", "share", "number", "date", "text"]
#: Widest column, in characters.
MAX_WIDTH = 48


def column_letter(index: int) -> str:
    """The spreadsheet letter of the 0-based column ``index`` (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell(row: int, col: int, *, absolute: bool = False) -> str:
    """The A1 reference of 0-based ``row`` and ``col`` (``$A$1`` when ``absolute``)."""
    mark = "$" if absolute else ""
    return f"{mark}{column_letter(col)}{mark}{row + 1}"


def quoted(sheet: str) -> str:
    """``sheet`` as a formula names it (quoted when it has more than letters, digits and underscores)."""
    return sheet if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sheet) else "'" + sheet.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableRef:
    """Where a table was written: its sheet, its header row and first column (0-based), its rows and columns."""

    sheet: str
    header_row: int
    first_col: int
    rows: int
    columns: tuple[str, ...]

    def col(self, name: str) -> int:
        return self.first_col + self.columns.index(name)

    def column_range(self, name: str, *, absolute: bool = True) -> str:
        """The data cells of column ``name`` (``Sheet!$B$3:$B$40``); one empty row when the table has none."""
        col = self.col(name)
        first, last = self.header_row + 1, self.header_row + max(self.rows, 1)
        return f"{quoted(self.sheet)}!{cell(first, col, absolute=absolute)}:{cell(last, col, absolute=absolute)}"

    def chart_range(self, name: str) -> list[Any]:
        """Column ``name``'s data cells as XlsxWriter's chart ranges take them: ``[sheet, r0, c0, r1, c1]``."""
        col = self.col(name)
        return [self.sheet, self.header_row + 1, col, self.header_row + max(self.rows, 1), col]

    def header_cell(self, name: str) -> list[Any]:
        return [self.sheet, self.header_row, self.col(name)]


@dataclass
class Workbook:
    """One .xlsx file being written; ``currency`` is the reporting currency's ISO code (EUR)."""

    path: Path
    currency: str = "EUR"
    _book: Any = field(init=False, repr=False)
    _formats: dict[str, Any] = field(init=False, repr=False)
    _tables: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        import xlsxwriter  # only a workbook needs it

        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._book = xlsxwriter.Workbook(str(self.path), {"nan_inf_to_errors": True, "remove_timezone": True,
                                                             "use_future_functions": True})
        money = f'#,##0.00 "{self.currency}";-#,##0.00 "{self.currency}"'
        self._formats = {
            "money": self._book.add_format({"num_format": money}),
            "count": self._book.add_format({"num_format": "#,##0"}),
            "share": self._book.add_format({"num_format": "0.0%"}),
            "number": self._book.add_format({"num_format": "#,##0.00"}),
            "date": self._book.add_format({"num_format": "yyyy-mm-dd"}),
            "text": self._book.add_format({}),
            "title": self._book.add_format({"bold": True, "font_size": 14}),
            "note": self._book.add_format({"italic": True, "font_color": "#555555"}),
            "label": self._book.add_format({"bold": True}),
            "input": self._book.add_format({"bg_color": "#FFF2CC", "border": 1, "bold": True}),
        }

    @property
    def book(self) -> Any:
        """The XlsxWriter workbook, for what this class does not wrap."""
        return self._book

    def format(self, kind: str) -> Any:
        return self._formats[kind]

    def sheet(self, name: str) -> Any:
        """The worksheet ``name``, added on first use."""
        return self._book.get_worksheet_by_name(name) or self._book.add_worksheet(name)

    def title(self, sheet: str, text: str, note: str | None = None) -> int:
        """A title (and a note below it) at the top of ``sheet``; returns the first free row."""
        ws = self.sheet(sheet)
        ws.write(0, 0, text, self._formats["title"])
        if note:
            ws.write(1, 0, note, self._formats["note"])
            return 3
        return 2

    def table(self, sheet: str, frame: pd.DataFrame, *, kinds: Mapping[str, Kind] | None = None,
              row: int = 0, col: int = 0, name: str | None = None, freeze: bool = True,
              row_kinds: tuple[Sequence[str], Sequence[Kind]] | None = None) -> TableRef:
        """``frame`` as an Excel table at (``row``, ``col``) of ``sheet``: filter buttons, each column formatted by
        its kind (guessed from the dtype when ``kinds`` does not say), the header frozen when ``freeze``.

        ``row_kinds`` (columns, one kind per row) formats those columns row by row instead: a column of
        KPIs holds money on one row and a share on the next.
        """
        ws = self.sheet(sheet)
        kinds = dict(kinds or {})
        columns = [str(c) for c in frame.columns]
        options = []
        for column in columns:
            kind = kinds.get(column) or guess_kind(frame[column])
            options.append({"header": column, "format": self._formats[kind]})
        data = [[excel_value(v) for v in values] for values in frame.itertuples(index=False, name=None)]
        last_row = row + max(len(data), 1)
        self._tables += 1
        ws.add_table(row, col, last_row, col + len(columns) - 1,
                     {"data": data, "columns": options, "name": name or f"Table{self._tables}",
                      "style": "Table Style Light 9"})
        if row_kinds is not None:
            named, per_row = row_kinds
            for i, kind in enumerate(per_row):
                for column in named:
                    c = columns.index(column)
                    ws.write(row + 1 + i, col + c, data[i][c], self._formats[kind])
        for i, column in enumerate(columns):
            width = max([len(column), *(len(str(v)) for v in frame[column].head(200))]) + 2
            ws.set_column(col + i, col + i, min(max(width, 8), MAX_WIDTH))
        if freeze:
            ws.freeze_panes(row + 1, 0)
        return TableRef(sheet, row, col, len(data), tuple(columns))

    def close(self) -> Path:
        self._book.close()
        return self.path


def guess_kind(values: pd.Series) -> Kind:
    """The kind of a column from its dtype: dates, counts (integers), numbers, text."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_bool_dtype(values):
        return "text"
    if pd.api.types.is_integer_dtype(values):
        return "count"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    return "text"


def excel_value(value: Any) -> Any:
    """A cell value XlsxWriter stores as Excel would: numbers as numbers, missing as empty, times without zone."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, (int, float, str, dt.date, dt.datetime)):
        return value
    return str(value)


def line_chart(book: Workbook, table: TableRef, *, x: str, series: Sequence[str], title: str,
               y_title: str | None = None, kind: str = "line", y_format: str | None = None,
               stacked: bool = False) -> Any:
    """A native chart of ``series`` columns of ``table`` against ``x`` (``kind``: line, column, bar, area)."""
    options: dict[str, Any] = {"type": kind}
    if stacked:
        options["subtype"] = "stacked"
    chart = book.book.add_chart(options)
    for name in series:
        chart.add_series({"name": table.header_cell(name), "categories": table.chart_range(x),
                          "values": table.chart_range(name), **({"marker": {"type": "circle", "size": 4}}
                                                               if kind == "line" else {})})
    chart.set_title({"name": title})
    axis: dict[str, Any] = {"min": 0, "major_gridlines": {"visible": True, "line": {"color": "#DDDDDD"}}}
    if y_title:
        axis["name"] = y_title
    if y_format:
        axis["num_format"] = y_format
    chart.set_y_axis(axis)
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": 360})
    return chart
