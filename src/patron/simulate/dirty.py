"""Text output and injected bad rows.

Files hold text the way exports do: timestamps ISO 8601 in UTC with a ``Z``
(``2024-12-20T18:03:11Z``), dates ``YYYY-MM-DD``, booleans ``true``/``false``,
empty for null. ``inject`` appends bad rows to the text form of ``orders``
and ``order_lines``: per kind ``n`` rows, recorded as ``{"table", "kind",
"key", "line"}`` where ``line`` is the 1-based line in the CSV file (the header
is line 1; for Parquet it is the row number + 1, the same count). Kinds:

* ``unparsable_date``: an order with ``ordered_at`` no parser accepts;
* ``unknown_currency``: an order in a code outside ISO 4217 (``XXX``...);
* ``negative_quantity``: an extra line (line_no 1000+) of a real order with quantity < 0;
* ``missing_key``: an order without ``order_id`` or a line without ``line_no`` (alternating);
* ``duplicate_key``: a copy of a real order (another time) or line (another
  quantity) under the same key (alternating); ``duplicate_of`` gives the
  original's line. New order ids of dirty rows start with ``X``.

Because a bad value cannot live in a typed Parquet column, ``orders`` and
``order_lines`` are written with all-string columns (in the same text form as
CSV) whenever dirty rows are asked for, in both formats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DIRTY_KINDS = ("unparsable_date", "unknown_currency", "negative_quantity", "missing_key", "duplicate_key")
BAD_DATES = ("not a date", "31/12/2023 25:61", "2024-13-45T99:00:00Z", "yesterday")
BAD_CURRENCIES = ("XXX", "ZZZ", "EURO")


def as_text(table: pa.Table) -> pa.Table:
    """Every column as strings in the file format described in the module docstring."""
    columns = []
    for col in table.columns:
        typ = col.type
        if pa.types.is_timestamp(typ):
            secs = pc.cast(col, pa.timestamp("s", tz="UTC"))
            columns.append(pc.strftime(secs, format="%Y-%m-%dT%H:%M:%SZ"))
        else:
            columns.append(pc.cast(col, pa.string()))
    return pa.table(columns, names=table.column_names)


def _row(table: pa.Table, i: int) -> dict[str, Any]:
    return {k: v[0] for k, v in table.slice(i, 1).to_pydict().items()}


def _append(table: pa.Table, rows: list[dict[str, Any]]) -> pa.Table:
    if not rows:
        return table
    extra = pa.Table.from_pylist(rows, schema=table.schema)
    return pa.concat_tables([table, extra])


def inject(rng: np.random.Generator, orders: pa.Table, lines: pa.Table, n: int
           ) -> tuple[pa.Table, pa.Table, list[dict[str, Any]]]:
    """Text tables with ``n`` bad rows of every kind appended, and the record of each bad row."""
    if n <= 0:
        return orders, lines, []
    picks_o = rng.choice(orders.num_rows, size=min(3 * n, orders.num_rows), replace=False)
    picks_l = rng.choice(lines.num_rows, size=min(2 * n, lines.num_rows), replace=False)
    new_o: list[dict[str, Any]] = []
    new_l: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    counter = iter(range(1, 10**9))

    def add_order(row: dict[str, Any], kind: str, extra: dict[str, Any] | None = None) -> None:
        new_o.append(row)
        entry = {"table": "orders", "kind": kind, "key": {"order_id": row["order_id"]},
                 "line": orders.num_rows + len(new_o) + 1}
        log.append({**entry, **(extra or {})})

    def add_line(row: dict[str, Any], kind: str, extra: dict[str, Any] | None = None) -> None:
        new_l.append(row)
        entry = {"table": "order_lines", "kind": kind,
                 "key": {"order_id": row["order_id"], "line_no": row["line_no"]},
                 "line": lines.num_rows + len(new_l) + 1}
        log.append({**entry, **(extra or {})})

    for i in range(n):
        base = _row(orders, int(picks_o[i % picks_o.size]))
        add_order({**base, "order_id": f"X{next(counter):09d}", "ordered_at": BAD_DATES[i % 4]},
                  "unparsable_date")
        base = _row(orders, int(picks_o[(n + i) % picks_o.size]))
        add_order({**base, "order_id": f"X{next(counter):09d}", "currency": BAD_CURRENCIES[i % 3]},
                  "unknown_currency")
        base = _row(lines, int(picks_l[i % picks_l.size]))
        add_line({**base, "line_no": str(1000 + i), "quantity": str(-1 - i % 3)}, "negative_quantity")
        if i % 2 == 0:
            base = _row(orders, int(picks_o[(2 * n + i) % picks_o.size]))
            add_order({**base, "order_id": None}, "missing_key")
        else:
            base = _row(lines, int(picks_l[(n + i) % picks_l.size]))
            add_line({**base, "line_no": None}, "missing_key")
        if i % 2 == 0:
            j = int(picks_o[(2 * n + i + 1) % picks_o.size])
            base = _row(orders, j)
            changed = base["ordered_at"][:8] + ("01" if base["ordered_at"][8:10] != "01" else "02") + \
                base["ordered_at"][10:]
            add_order({**base, "ordered_at": changed}, "duplicate_key", {"duplicate_of": j + 2})
        else:
            j = int(picks_l[(n + i - 1) % picks_l.size])
            base = _row(lines, j)
            add_line({**base, "quantity": str(int(base["quantity"]) + 1)}, "duplicate_key",
                     {"duplicate_of": j + 2})
    return _append(orders, new_o), _append(lines, new_l), log
