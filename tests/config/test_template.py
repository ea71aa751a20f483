"""The default patron.toml: written by ``patron init``, read back as the default settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.config import load_settings, write_default_config
from patron.errors import ConfigError


def test_default_config_round_trips(tmp_path: Path) -> None:
    write_default_config(tmp_path)
    text = (tmp_path / "patron.toml").read_text()
    assert text.splitlines()[1].startswith('engine = "duckdb"')
    settings = load_settings(tmp_path)
    assert settings.engine == "duckdb"
    assert settings.warehouse_path == tmp_path.resolve() / "patron.duckdb"
    assert settings.model.horizons_months == (3, 12, 36)
    assert settings.model.unit_days == 7
    assert settings.reporting_currency == "EUR"


def test_spark_engine_line_is_written(tmp_path: Path) -> None:
    write_default_config(tmp_path, engine="spark")
    assert load_settings(tmp_path).engine == "spark"


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    write_default_config(tmp_path)
    with pytest.raises(ConfigError, match="exists"):
        write_default_config(tmp_path)
