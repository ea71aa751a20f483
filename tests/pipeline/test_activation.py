"""The activation steps' files: a table exported whole or not at all, empty tables included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron import pipeline
from patron.config import Settings
from patron.engine import Warehouse, connect
from patron.errors import EngineError, PatronError

ROWS = pd.DataFrame({"customer_key": [f"c{i}" for i in range(5)], "clv_12m": [i + 0.5 for i in range(5)]})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(project_dir=tmp_path / "project", engine="duckdb")
    with connect(settings) as warehouse:
        warehouse.write("scores", ROWS)
        warehouse.write("nobody", ROWS.iloc[:0])
    return settings


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_is_exported_whole(settings: Settings, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "out" / f"scores{suffix}"
    assert pipeline.export_table(settings, "scores", out) == 5
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, ROWS)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_empty_table_gives_a_file_with_its_columns(settings: Settings, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"nobody{suffix}"
    assert pipeline.export_table(settings, "nobody", out) == 0
    if suffix == ".csv":
        assert out.read_text(encoding="utf-8").splitlines()[0].replace('"', "") == "customer_key,clv_12m"
    else:
        assert pq.read_schema(out).names == ["customer_key", "clv_12m"] and pq.read_metadata(out).num_rows == 0


def test_a_failed_export_leaves_the_old_file_and_no_scraps(settings: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("before\n", encoding="utf-8")
    stream = Warehouse.batches

    def failing(self: Warehouse, expr, *, chunk_size: int = 1_000_000) -> Iterator[pa.RecordBatch]:
        yield from stream(self, expr, chunk_size=chunk_size)
        raise EngineError("query failed: the connection dropped")

    monkeypatch.setattr(Warehouse, "batches", failing)
    with pytest.raises(EngineError, match="connection dropped"):
        pipeline.export_table(settings, "scores", out)
    assert out.read_text(encoding="utf-8") == "before\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scores")] == []
    with pytest.raises(PatronError, match="suffix"):
        pipeline.export_table(settings, "scores", tmp_path / "scores.xlsx")
