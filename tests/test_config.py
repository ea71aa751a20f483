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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('engine = "oracle"', "engine must be one of"),
        ('[model]\ntime_unit = "month"', "time_unit"),
        ("[model]\nhorizons_months = [0, 12]", "horizons_months"),
        ('[quality]\nmax_nul_rate = 0.1', "unknown setting"),
        ("engine = ", "patron.toml"),
        ('[reporting]\ncurrency = "euro"', "ISO 4217"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "patron.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="patron init"):
        load_settings(tmp_path)
