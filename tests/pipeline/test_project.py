"""The project around the steps: the reporter, the warehouse a step opens and closes, init and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron import pipeline
from patron.config import CONFIG_NAME, Settings
from patron.engine import Warehouse


def test_a_note_is_kept_and_shown_once() -> None:
    shown: list[str] = []

    class Recording(pipeline.Reporter):
        def show_note(self, message: str) -> None:
            shown.append(message)

    reporter = Recording()
    for message in ("no returns table", "no surveys", "no returns table"):
        reporter.note(message)
    assert reporter.notes == shown == ["no returns table", "no surveys"]
    with reporter.task("Counting", total=2) as advance:
        advance(2)  # the default reporter shows no progress, and needs none


def test_a_step_closes_its_warehouse_even_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[Warehouse] = []
    close = Warehouse.close

    def recording_close(self: Warehouse) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(Warehouse, "close", recording_close)
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    with pipeline.open_warehouse(settings) as warehouse:
        assert warehouse.list_tables() == []
    assert closed == [warehouse]
    with pytest.raises(RuntimeError, match="boom"), pipeline.open_warehouse(settings) as failing:
        raise RuntimeError("boom")
    assert closed == [warehouse, failing]


def test_init_writes_the_settings_and_an_empty_warehouse(tmp_path: Path) -> None:
    settings = pipeline.init_project(tmp_path / "shop")
    assert (tmp_path / "shop" / CONFIG_NAME).exists()
    assert settings.engine == "duckdb" and settings.warehouse_path.exists()


def test_api_keys_are_created_listed_and_revoked(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, engine="duckdb")
    assert pipeline.api_keys(settings) == []
    key = pipeline.create_api_key(settings, "analyst")
    (listed,) = pipeline.api_keys(settings)
    assert key.startswith(f"ptk_{listed['key_id']}_") and listed["role"] == "analyst" and not listed["revoked"]
    assert "key_hash" not in listed
    assert pipeline.revoke_api_key(settings, str(listed["key_id"]))
    assert pipeline.api_keys(settings)[0]["revoked"]
    assert not pipeline.revoke_api_key(settings, "0" * 12)
