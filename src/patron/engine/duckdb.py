"""The embedded default engine: one DuckDB file, with real transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from patron.engine.base import Warehouse


class DuckDBWarehouse(Warehouse):
    """The embedded default: one DuckDB file, with real transactions."""

    engine = "duckdb"
    _depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:  # already inside one: the outer transaction decides
            yield
            return
        raw = self.con.con
        raw.begin()
        self._depth += 1
        try:
            yield
        except BaseException:
            raw.rollback()
            raise
        else:
            raw.commit()
        finally:
            self._depth -= 1

    def splink_api(self) -> Any:
        from splink import DuckDBAPI

        return DuckDBAPI(connection=self.con.con)

    def _swap(self, staging: str, name: str) -> None:
        with self.transaction():
            if self.has_table(name):
                self.con.drop_table(name)
            # names were checked by check_table_name; DuckDB's Ibis backend has no rename
            self.con.con.execute(f'ALTER TABLE "{staging}" RENAME TO "{name}"')
