"""GDPR erasure in the serving layer: the person leaves every kept version and the online store.

Versions are otherwise never changed; erasure is the exception the law makes. Each Parquet
file of each version is rewritten without the person's rows (through a temporary file
renamed over it, so a reader sees the old file or the new one), their source records leave
the version's ``customers`` copy, and the online store drops their documents, look-ups,
live row and logged events (:meth:`patron.serving.online.OnlineStore.erase`). The monthly
summary holds no person and stays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from patron.serving.layout import TABLES, version_dir, versions
from patron.serving.online import OnlineStore
from patron.serving.publish import CUSTOMER_RECORDS
from patron.tables import IDENTITY_MAP


@dataclass
class ServingErasure:
    """Rows removed from the serving layer: per version and table, and entries of the online store."""

    files: dict[str, int] = field(default_factory=dict)  # "<version>/<table>" -> rows removed
    online_entries: int = 0

    @property
    def rows(self) -> int:
        return sum(self.files.values())


def erase_from_serving(root: Path, store: OnlineStore, customer_keys: Sequence[str]) -> ServingErasure:
    """Remove ``customer_keys`` from every version under ``root`` and from ``store``."""
    keys = pa.array(sorted(set(customer_keys)), type=pa.string())
    result = ServingErasure()
    if len(keys) == 0:
        return result
    kept = versions(root)
    for version in kept:
        folder = version_dir(root, version) / TABLES
        records = _records_of(folder / f"{IDENTITY_MAP}.parquet", keys)
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path)
            if "customer_key" in table.column_names:
                drop = pc.is_in(table["customer_key"], value_set=keys)
            elif path.stem == CUSTOMER_RECORDS and records is not None:
                drop = pc.is_in(_record_ids(table), value_set=records)
            else:
                continue
            removed = pc.sum(drop.cast(pa.int64())).as_py() or 0
            if removed:
                _replace(path, table.filter(pc.invert(pc.fill_null(drop, False))))
                result.files[f"{version}/{path.stem}"] = int(removed)
    result.online_entries = store.erase([str(k) for k in keys.to_pylist()], kept)
    return result


def _record_ids(table: pa.Table) -> pa.Array:
    """``source`` and ``customer_id`` joined in one text per row, to match records."""
    return pc.binary_join_element_wise(table["source"].cast(pa.string()), table["customer_id"].cast(pa.string()),
                                       "\x1f")


def _records_of(identity: Path, keys: pa.Array) -> pa.Array | None:
    """The source records (as :func:`_record_ids` texts) of ``keys`` in a version's identity map."""
    if not identity.is_file():
        return None
    table = pq.read_table(identity, columns=["customer_key", "source", "customer_id"])
    return _record_ids(table.filter(pc.is_in(table["customer_key"], value_set=keys))).combine_chunks()


def _replace(path: Path, table: pa.Table) -> None:
    temporary = path.with_name(f".{path.name}.erasing")
    pq.write_table(table, temporary)
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
