"""Source mappings (``[[sources]]``): how a customer's export maps to the data contract, and the words they may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``layout``: how a file other than one contract table is laid out (a flat log of order lines).
LAYOUTS = ("transactions",)
#: Value maps shipped with patron (``patron/data/<name>.csv``), named in ``[sources.values]``.
SHIPPED_VALUE_MAPS = ("country_names",)
#: Operators of ``exclude`` rules ``[file column, operator, value]``.
EXCLUDE_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "starts with", "ends with",
                     "contains", "is empty", "is not empty")
#: ``unmapped``: what happens to a value its value map lacks.
UNMAPPED_POLICIES = ("keep", "null", "reject")
#: ``date_format`` words for dates without a pattern: which number comes first.
DATE_READINGS = ("day_first", "month_first")
#: Extra columns a flat transaction log may map besides the orders and order_lines columns.
TRANSACTION_EXTRAS = ("amount",)


@dataclass(frozen=True)
class SourceMapping:
    """How one export maps to the data contract (a ``[[sources]]`` entry; see docs/mapping.md).

    Attributes
    ----------
    name
        The source's name; also the value of the contract's ``source`` column unless mapped.
    path
        A file, or a folder whose every readable file belongs to this source, relative to the
        project folder.
    table, layout
        The contract table the file feeds, or ``"transactions"``: a flat log of order lines
        split into ``orders`` and ``order_lines``. Exactly one is set.
    delimiter, encoding, sheet, skip_rows
        How to read the file (``delimiter = "whitespace"``: runs of blanks separate fields).
    decimal, thousands
        Number spellings of numeric columns (``decimal = ","``, ``thousands = "."``: ``1.234,56``).
    date_format
        A strftime pattern, ``"day_first"`` or ``"month_first"``; None: ISO, else detected.
    time_zone
        IANA zone of timestamps written without one; they are converted to UTC.
    columns, constants, values
        Contract column → file column; → a constant; → a value map (a table of file value →
        contract value, or the name of a shipped map such as ``"country_names"``).
    unmapped
        What happens to a value a value map lacks: ``keep`` it, make it ``null``, or ``reject`` the row.
    exclude
        Row filters ``(file column, operator, value)``; a row matching any is not loaded and goes
        to ``rejects`` as excluded by the rule.
    engine_table
        Instead of ``path``: a table or view the project's engine reads, such as a Spark
        catalog table (``sales.orders_export`` on Databricks) or a table of the DuckDB
        warehouse file. Its rows are mapped as a file's would be (line = row number).
    """

    name: str
    path: str = ""
    table: str | None = None
    layout: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    skip_rows: int = 0
    decimal: str = "."
    thousands: str = ""
    date_format: str | None = None
    time_zone: str = "UTC"
    columns: dict[str, str] = field(default_factory=dict, hash=False)
    constants: dict[str, str] = field(default_factory=dict, hash=False)
    values: dict[str, dict[str, str] | str] = field(default_factory=dict, hash=False)
    unmapped: str = "keep"
    exclude: tuple[tuple[Any, ...], ...] = ()
    engine_table: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """The contract tables this source feeds."""
        return ("orders", "order_lines") if self.layout == "transactions" else (str(self.table),)

    def resolved_path(self, project_dir: Path) -> Path:
        """``path`` in ``project_dir``, the folder holding ``patron.toml``."""
        return project_dir / self.path

