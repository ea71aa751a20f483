"""A mapped file: one contract table's text columns, with the file's own rows beside them.

:func:`patron.transforms.mapping.apply_mapping` produces one :class:`MappedFile` per
contract table a file feeds (one, or ``orders`` and ``order_lines`` of a flat log split
by :mod:`patron.transforms.transactions`); ingest reads it. Both mapping modules build
it here, so neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pyarrow as pa

from patron.contract import CONTRACT
from patron.transforms.readers import RawFile


@dataclass
class MappedFile:
    """One contract table's share of a mapped file.

    Attributes
    ----------
    table
        The contract table.
    raw
        Every contract column as text (blank where the source gives nothing), with the
        physical line of each row and the file's path and digest.
    records
        The file's own rows, aligned with ``raw.table``: what ``rejects`` shows.
    set_aside
        Per row of ``raw``: ``reason`` (NULL: ingest the row), ``field``, ``value`` and
        ``excluded`` (an ``exclude`` rule, not an invalid value).
    origin
        Contract column → the file column it came from.
    """

    table: str
    raw: RawFile
    records: pa.Table
    set_aside: pa.Table
    origin: dict[str, str] = field(default_factory=dict)


def contract_file(table: str, raw: RawFile, columns: dict[str, pa.Array], records: pa.Table,
                  aside: pa.Table, origin: dict[str, str]) -> MappedFile:
    """A ``MappedFile`` holding every column of ``table``, blank where ``columns`` has none."""
    n = len(raw.lines)
    text = {c: columns.get(c, pa.array([""] * n, pa.string())) for c in CONTRACT[table].column_names}
    unfilled = [c.name for c in CONTRACT[table] if c.name not in columns]
    notes = [f"{raw.path}: {table} columns not mapped, left empty: {', '.join(unfilled)}"] if unfilled else []
    mapped = replace(raw, table=pa.table(text), warnings=[*raw.warnings, *notes])
    return MappedFile(table, mapped, records, aside, {c: f for c, f in origin.items() if c in text})
