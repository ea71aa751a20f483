"""A customer's document in a serving version: compact rows where it is stored, dicts where it is used.

A version stores each customer's ``rfm``, ``scores``, ``segments`` and ``preferences`` rows,
their orders and their source records as JSON arrays of values, in the column order its
manifest records once (:attr:`patron.serving.layout.Manifest.documents`). At 1M customers the
column names repeated in every document were half of its 2.4 GB, and building and writing
them half of a publish. :func:`expand` gives a lookup the named rows back (microseconds).

Documents of versions published before this layout (named rows, no columns in the manifest)
pass through :func:`expand` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Parts holding one row (JSON null when the customer has none).
ROW_PARTS = ("rfm", "scores", "segments", "preferences")
#: Parts holding a list of rows.
LIST_PARTS = ("orders", "personal")
#: A row's key column: not stored in its array (the document is the customer's), filled back by :func:`expand`.
KEY = "customer_key"


def stored_columns(columns: Sequence[str]) -> list[str]:
    """The columns a stored array holds, in order: ``columns`` without :data:`KEY`."""
    return [c for c in columns if c != KEY]


def expand(doc: dict[str, Any], columns: Mapping[str, Sequence[str]], customer_key: str) -> dict[str, Any]:
    """``doc`` as stored, with each part's arrays turned into rows named by ``columns`` (the manifest's)."""
    out: dict[str, Any] = {}
    for part, value in doc.items():
        names = columns.get(part)
        if names is None:
            out[part] = value
        elif part in LIST_PARTS:
            out[part] = [_row(names, v, customer_key) if isinstance(v, list) else v for v in value or []]
        else:
            out[part] = _row(names, value, customer_key) if isinstance(value, list) else value
    return out


def _row(names: Sequence[str], values: list[Any], customer_key: str) -> dict[str, Any]:
    stored = iter(values)
    return {name: customer_key if name == KEY else next(stored, None) for name in names}
