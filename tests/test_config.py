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


def test_privacy_section(tmp_path: Path) -> None:
    from patron.config import DEFAULT_TOML, PrivacySettings, parse_settings

    assert parse_settings({}, tmp_path).privacy == PrivacySettings(hash_personal_data=False, key_env="PATRON_PII_KEY")
    on = parse_settings({"privacy": {"hash_personal_data": True, "key_env": "SHOP_PII_KEY"}}, tmp_path)
    assert on.privacy.hash_personal_data and on.privacy.key_env == "SHOP_PII_KEY"
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) in \[privacy\]: key"):
        parse_settings({"privacy": {"key": "secret-in-the-file"}}, tmp_path)
    with pytest.raises(ConfigError, match="hash_personal_data must be true or false"):
        parse_settings({"privacy": {"hash_personal_data": "yes"}}, tmp_path)
    assert "[privacy]" in DEFAULT_TOML and "PATRON_PII_KEY" in DEFAULT_TOML
