"""The service's store: one interface (:mod:`.base`), one module per backend, and :func:`open_store` to pick one.

- :mod:`patron.service.store.base`: :class:`~patron.service.store.base.ServiceStore`, the rows it
  returns and the one record-an-order workflow;
- :mod:`patron.service.store.warehouse`: the general backend, Ibis on any engine;
- :mod:`patron.service.store.duckdb` (with :mod:`~patron.service.store.duckdb_events`, its
  order writer): the DuckDB fast path.

The backends import the base, never the reverse; only this factory knows them all.
"""

from __future__ import annotations

import threading

from patron.engine import DuckDBWarehouse, Warehouse
from patron.service.store.base import ServiceStore
from patron.service.store.duckdb import DuckDBStore
from patron.service.store.warehouse import WarehouseStore

__all__ = ["DuckDBStore", "ServiceStore", "WarehouseStore", "open_store"]


def open_store(warehouse: Warehouse, lock: threading.Lock) -> ServiceStore:
    """The store for ``warehouse``: the DuckDB fast path on DuckDB, the general one elsewhere."""
    if isinstance(warehouse, DuckDBWarehouse):
        return DuckDBStore(warehouse, lock)
    return WarehouseStore(warehouse, lock)
