"""A flat transaction log (``layout = "transactions"``) split into ``orders`` and ``order_lines``.

Each row of the log is an order line (or a whole order). Rows with the same order id are
the lines of one order; without an order id, one order per customer and timestamp, with
the stable id ``<source>:<customer_id>:<ordered_at>``. An order's columns come from its
first row in the file; a later row that disagrees on one of them is set aside with a
reason naming the column. ``line_no`` is the row's rank within its order, in file order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from patron.config import SourceMapping
from patron.contract import CONTRACT
from patron.errors import DataContractError
from patron.transforms.mapped import MappedFile, contract_file
from patron.transforms.readers import RawFile

#: Columns of a flat log that belong to the order, compared across its lines.
ORDER_LEVEL = tuple(c for c in CONTRACT["orders"].column_names if c != "order_id")
#: The SKU a line gets when the log names no product (the log then holds whole orders).
DEFAULT_SKU = "ITEM"
_FLOAT = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def _number(text: pa.Array) -> pa.Array:
    """``text`` as float64; NULL where it is not a plain number."""
    clean = pc.utf8_trim_whitespace(text)
    ok = pc.match_substring_regex(clean, _FLOAT)
    return pc.if_else(ok, pc.cast(pc.if_else(ok, clean, "0"), pa.float64()), pa.scalar(None, pa.float64()))


def unit_prices(amount: pa.Array, quantity: pa.Array) -> pa.Array:
    """``amount / quantity`` as text; the amount's own text where either does not parse or quantity ≤ 0."""
    amounts, quantities = _number(amount), _number(quantity)
    ok = pc.fill_null(pc.and_(pc.is_valid(amounts), pc.greater(quantities, 0)), False)
    divided = pc.divide(amounts, pc.if_else(ok, quantities, 1.0))
    return pc.if_else(ok, pc.cast(divided, pa.string()), amount)


def _complete(raw: RawFile, source: SourceMapping, columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """The log's columns with the derived ones: order_id, sku, quantity, unit_price."""
    n = raw.table.num_rows
    where = f"source {source.name!r} ({raw.path})"
    columns = dict(columns)
    if "ordered_at" not in columns:
        raise DataContractError(f"{where}: a transaction log needs ordered_at; map it in [sources.columns]")
    if "unit_price" not in columns and "amount" not in columns:
        raise DataContractError(f"{where}: a transaction log needs unit_price or amount; map one in "
                                "[sources.columns]")
    if "order_id" not in columns:
        if "customer_id" not in columns:
            raise DataContractError(f"{where}: without order_id, a transaction log needs customer_id "
                                    "(one order per customer and timestamp)")
        columns["order_id"] = pc.binary_join_element_wise(
            source.name, columns["customer_id"], columns["ordered_at"], ":")
    columns.setdefault("sku", pa.array([DEFAULT_SKU] * n, pa.string()))
    columns.setdefault("quantity", pa.array(["1"] * n, pa.string()))
    if "amount" in columns:
        columns["unit_price"] = unit_prices(columns.pop("amount"), columns["quantity"])
    return columns


def split_transactions(raw: RawFile, source: SourceMapping, columns: dict[str, pa.Array],
                       origin: dict[str, str], aside: pa.Table) -> list[MappedFile]:
    """``orders`` (first row of each order) and ``order_lines`` (every row) of a mapped log."""
    columns = _complete(raw, source, columns)
    n = raw.table.num_rows
    kept = pc.is_null(aside["reason"]).to_numpy(zero_copy_only=False)
    ids = pd.Series(columns["order_id"].to_pylist(), dtype=object).str.strip()
    # a row without an order id is its own group: ingest rejects it for the missing key
    key = ids.where(ids != "", pd.Series([f"\0{i}" for i in range(n)]))
    lines = pd.Series(raw.lines.to_numpy())
    groups = key[kept]
    first = np.zeros(n, dtype=bool)
    first[np.flatnonzero(kept)[~groups.duplicated().to_numpy()]] = True
    rank = np.zeros(n, dtype=np.int64)
    rank[kept] = groups.groupby(groups, sort=False).cumcount().to_numpy() + 1
    if "line_no" not in columns:
        columns["line_no"] = pa.array(rank.astype(str), pa.string())
    # constants cannot disagree, nor the columns a derived order id is made of
    derived = {"customer_id", "ordered_at"} if "order_id" not in origin else set()
    varying = [c for c in ORDER_LEVEL if c in origin and c not in derived]
    aside = _disagreements(columns, varying, aside, key, kept, lines)
    orders_at = pa.array(np.flatnonzero(first))
    order_columns = {name: columns[name].take(orders_at) for name in columns}
    orders_raw = replace(raw, table=raw.table.take(orders_at), lines=raw.lines.take(orders_at), bad_rows=[])
    no_aside = pa.table({name: pa.nulls(len(orders_at), aside.schema.field(name).type) for name in aside.column_names})
    orders = contract_file("orders", orders_raw, order_columns, raw.table.take(orders_at), no_aside, origin)
    lines_raw = replace(raw, warnings=[])
    order_lines = contract_file("order_lines", lines_raw, columns, raw.table, aside, origin)
    return [orders, order_lines]


def _disagreements(columns: dict[str, pa.Array], varying: list[str], aside: pa.Table, key: pd.Series,
                   kept: np.ndarray, lines: pd.Series) -> pa.Table:
    """``aside`` with the later rows of an order that disagree with its first row on a ``varying`` column."""
    if not varying:
        return aside
    reason = aside["reason"].to_pandas().astype(object)
    fields, values = aside["field"].to_pandas().astype(object), aside["value"].to_pandas().astype(object)
    groups = key[kept]
    first_line = lines[kept].groupby(groups, sort=False).transform("first").astype(str)
    ids = pd.Series(columns["order_id"].to_pandas(), dtype=object)[kept].map(repr)
    for name in varying:
        value = pd.Series(columns[name].to_pandas(), dtype=object).fillna("").str.strip()[kept]
        first = value.groupby(groups, sort=False).transform("first")
        differs = (value != first) & reason[kept].isna()
        rows = differs.index[differs.to_numpy()]
        if len(rows):
            reason[rows] = ("order " + ids[rows] + f": {name} " + value[rows].map(repr) + " differs from "
                            + first[rows].map(repr) + " on line " + first_line[rows] + ", the order's first line")
            fields[rows], values[rows] = name, value[rows]
    return pa.table({"reason": pa.array(reason.where(reason.notna(), None).tolist(), pa.string()),
                     "field": pa.array(fields.where(fields.notna(), None).tolist(), pa.string()),
                     "value": pa.array(values.where(values.notna(), None).tolist(), pa.string()),
                     "excluded": aside["excluded"]})
