"""Settings: what ``patron.toml`` holds, read once and passed down as one object."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patron.errors import ConfigError

CONFIG_NAME = "patron.toml"
ENGINES = ("duckdb", "spark")
TIME_UNITS = {"day": 1, "week": 7}
PURCHASE_MODEL_NAMES = ("BetaGeo", "ParetoNBD", "ModifiedBetaGeo")

DEFAULT_TOML = """\
# patron project settings. Every command runs in the folder holding this file.
engine = "duckdb"            # "duckdb" (embedded, one file) or "spark"

[duckdb]
path = "patron.duckdb"       # the warehouse file, relative to this folder

[spark]
master = "local[2]"          # or a cluster URL; leave empty to use an existing session (Databricks)
database = "patron"          # the catalog database patron reads and writes
warehouse_dir = "spark-warehouse"
shuffle_partitions = 8
driver_memory = "4g"         # local mode only: the driver does all the work

[reporting]
currency = "EUR"             # money is converted to this currency through fx_rates

[model]
time_unit = "week"           # "day" or "week": the unit of frequency, recency and age
horizons_months = [3, 12, 36]
annual_discount_rate = 0.10
value = "gp2"                # "gp2" (profit) or "revenue"
holdout_months = 12          # backtests hold out the last months before the observation end
purchase_model = "BetaGeo"   # BetaGeo, ParetoNBD or ModifiedBetaGeo (the demo takes the backtest's champion)
# observation_end = "2025-12-31"   # default: the day after the last order

[quality]
max_null_rate = 0.05         # share of nulls allowed in a required-by-analysis column
max_duplicate_order_rate = 0.0
spend_outlier_z = 6.0        # order value this many robust deviations above the median
max_outlier_rate = 0.01
max_orders_without_lines_rate = 0.001

[identity]
match_threshold = 0.95       # Splink match probability needed to join a record no rule joined
phone_corroboration = ["first_name", "birth_year"]   # a shared phone links only if one of these agrees
max_records_per_key = 20     # an email/phone/loyalty id on more records is a placeholder
probabilistic = true         # false: deterministic rules only
"""


@dataclass(frozen=True)
class SparkSettings:
    """How to reach Spark: a local master in tests, a cluster or Databricks in production."""

    master: str = "local[2]"
    database: str = "patron"
    warehouse_dir: str = "spark-warehouse"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the data-quality checks."""

    max_null_rate: float = 0.05
    max_duplicate_order_rate: float = 0.0
    spend_outlier_z: float = 6.0
    max_outlier_rate: float = 0.01
    max_orders_without_lines_rate: float = 0.001


@dataclass(frozen=True)
class IdentitySettings:
    """Thresholds of identity resolution (the ``[identity]`` section of ``patron.toml``).

    Attributes
    ----------
    match_threshold
        Match probability at or above which Splink links a record no rule joined (0.95).
    phone_corroboration
        Fields of which at least one must agree (both present and equal) for a shared
        phone to link two records; ``("first_name", "birth_year")``.
    max_records_per_key
        A loyalty id, e-mail or phone held by more records than this is a placeholder
        and links nothing (20; real persons hold a handful of records).
    max_iterations
        Cap on label-propagation rounds; components wider than this raise (50).
    probabilistic
        Run Splink on the records no rule joined (True).
    u_max_pairs
        Random pairs Splink samples to estimate u probabilities (1e6).
    em_max_pairs
        Blocked pairs each expectation-maximisation round samples at most (2e6).
    seed
        Seed of Splink's random sampling, for reproducible parameters (42).
    key_unmatched_guests
        Give orders whose loyalty id or e-mail matches no customer record a guest key
        (``'G'`` + hash of the identifier) instead of NULL (True).
    """

    match_threshold: float = 0.95
    phone_corroboration: tuple[str, ...] = ("first_name", "birth_year")
    max_records_per_key: int = 20
    max_iterations: int = 50
    probabilistic: bool = True
    u_max_pairs: float = 1e6
    em_max_pairs: float = 2e6
    seed: int = 42
    key_unmatched_guests: bool = True


@dataclass(frozen=True)
class ModelSettings:
    """Time unit, horizons and discounting of the value models."""

    time_unit: str = "week"
    horizons_months: tuple[int, ...] = (3, 12, 36)
    annual_discount_rate: float = 0.10
    value: str = "gp2"
    observation_end: str | None = None
    holdout_months: int = 12
    purchase_model: str = "BetaGeo"

    @property
    def unit_days(self) -> int:
        return TIME_UNITS[self.time_unit]


@dataclass(frozen=True)
class Settings:
    """Everything ``patron.toml`` says, with the project folder it came from."""

    project_dir: Path = field(default_factory=Path.cwd)
    engine: str = "duckdb"
    duckdb_path: str = "patron.duckdb"
    spark: SparkSettings = field(default_factory=SparkSettings)
    reporting_currency: str = "EUR"
    model: ModelSettings = field(default_factory=ModelSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)

    @property
    def warehouse_path(self) -> Path:
        return self.project_dir / self.duckdb_path

    @property
    def spark_warehouse_dir(self) -> Path:
        return self.project_dir / self.spark.warehouse_dir

    def with_engine(self, engine: str) -> Settings:
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
        return replace(self, engine=engine)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{CONFIG_NAME}: [{name}] must be a table")
    return value


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{CONFIG_NAME}: unknown setting(s) in [{section}]: {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{CONFIG_NAME}: [{section}]: {exc}") from exc


def parse_settings(data: dict[str, Any], project_dir: Path) -> Settings:
    """Settings from the parsed TOML ``data``; every value is checked here, once."""
    engine = data.get("engine", "duckdb")
    if engine not in ENGINES:
        raise ConfigError(f"{CONFIG_NAME}: engine must be one of {ENGINES}, not {engine!r}")
    model_values = dict(_section(data, "model"))
    if "horizons_months" in model_values:
        model_values["horizons_months"] = tuple(int(h) for h in model_values["horizons_months"])
    model = _build(ModelSettings, model_values, "model")
    if model.time_unit not in TIME_UNITS:
        raise ConfigError(f"{CONFIG_NAME}: [model] time_unit must be one of {tuple(TIME_UNITS)}")
    if model.value not in ("gp2", "revenue"):
        raise ConfigError(f"{CONFIG_NAME}: [model] value must be 'gp2' or 'revenue'")
    if model.purchase_model not in PURCHASE_MODEL_NAMES:
        raise ConfigError(f"{CONFIG_NAME}: [model] purchase_model must be one of {PURCHASE_MODEL_NAMES}")
    if model.holdout_months <= 0:
        raise ConfigError(f"{CONFIG_NAME}: [model] holdout_months must be positive")
    if not model.horizons_months or any(h <= 0 for h in model.horizons_months):
        raise ConfigError(f"{CONFIG_NAME}: [model] horizons_months must be positive integers")
    currency = _section(data, "reporting").get("currency", "EUR")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        raise ConfigError(f"{CONFIG_NAME}: [reporting] currency must be an ISO 4217 code")
    return Settings(
        project_dir=project_dir.resolve(),
        engine=engine,
        duckdb_path=_section(data, "duckdb").get("path", "patron.duckdb"),
        spark=_build(SparkSettings, _section(data, "spark"), "spark"),
        reporting_currency=currency,
        model=model,
        quality=_build(QualitySettings, _section(data, "quality"), "quality"),
        identity=_identity(_section(data, "identity")),
    )


def _identity(values: dict[str, Any]) -> IdentitySettings:
    values = dict(values)
    if "phone_corroboration" in values:
        values["phone_corroboration"] = tuple(values["phone_corroboration"])
    identity = _build(IdentitySettings, values, "identity")
    if not 0.0 < identity.match_threshold <= 1.0:
        raise ConfigError(f"{CONFIG_NAME}: [identity] match_threshold must be in (0, 1]")
    return identity


def load_settings(project_dir: Path | str | None = None) -> Settings:
    """Read ``patron.toml`` from ``project_dir`` (default: the working folder)."""
    folder = Path(project_dir) if project_dir is not None else Path.cwd()
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_NAME} in {folder.resolve()}; run `patron init` first")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_settings(data, folder)


def write_default_config(project_dir: Path, *, engine: str = "duckdb") -> Path:
    """Write a commented ``patron.toml``; refuses to overwrite an existing one."""
    path = project_dir / CONFIG_NAME
    if path.exists():
        raise ConfigError(f"{path} exists already")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
    text = DEFAULT_TOML.replace('engine = "duckdb"', f'engine = "{engine}"', 1)
    project_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
