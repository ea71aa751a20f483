"""Settings: what ``patron.toml`` holds, read once and passed down as one object."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from itertools import pairwise
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

[segments]
horizon_months = 12          # the CLV horizon that ranks customers into tiers and the strategy grid
# tier_names = ["top_1", "top_1_5", "top_5_10", "top_10_25", "top_25_50", "bottom_50"]
# tier_shares = [0.01, 0.05, 0.10, 0.25, 0.50, 1.0]   # cumulative share of customers, ranked by CLV
# grid_shares = [0.2, 0.5]   # share rated high, and high + medium, on current and potential value
# engagement_days = [90, 365]   # last interaction within: high, medium; else low
# rfm_grid = [["champions", 5, 5, 4, 5], ...]   # [name, R from, R to, F from, F to]; first match wins
# service_priority = [1, 1, 2, 2, 3, 4]         # per tier: 1 is served first
# retention_offer_share = 0.2   # retention offers up to this share of the customer's CLV
# acquisition_cost_share = 0.3  # allowable acquisition cost: this share of the mean CLV acquired

# Audiences: named filters over segments, scores and features (see docs/segments-and-audiences.md).
# The playbooks (winback_high_value, discount_suppression, retention_offer, vip_service,
# value_lookalike_seed) ship ready; an audience of the same name replaces one.
# [[audiences]]
# name = "de_lapsed_vip"
# description = "Lapsed top-10% customers in Germany"
# where = [["value_tier", "in", ["top_1", "top_1_5", "top_5_10"]], ["lifecycle_stage", "=", "lapsed"]]
# market = "DE"
# horizon_months = 12
# action = "win_back"

[privacy]
hash_personal_data = false   # true: ingest stores e-mail, phone, names, postcode, loyalty id as keyed hashes
key_env = "PATRON_PII_KEY"   # environment variable holding the hashing key (never put the key in this file)
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


# -- segments and audiences --------------------------------------------------------------------
#: The usual RFM grid on recency and frequency scores 1-5: (name, R from, R to, F from, F to).
#: Cells are tried in order; the first that holds names the customer's segment.
DEFAULT_RFM_GRID: tuple[tuple[str, int, int, int, int], ...] = (
    ("champions", 5, 5, 4, 5),
    ("loyal", 3, 4, 4, 5),
    ("cannot_lose_them", 1, 2, 5, 5),
    ("at_risk", 1, 2, 3, 4),
    ("hibernating", 1, 2, 1, 2),
    ("need_attention", 3, 3, 3, 3),
    ("about_to_sleep", 3, 3, 1, 2),
    ("potential_loyalists", 4, 5, 2, 3),
    ("promising", 4, 4, 1, 1),
    ("new_customers", 5, 5, 1, 1),
)


@dataclass(frozen=True)
class SegmentSettings:
    """How customers are segmented (the ``[segments]`` section of ``patron.toml``).

    Attributes
    ----------
    horizon_months
        CLV horizon that ranks customers into value tiers and rates potential value (12).
    tier_names, tier_shares
        Value tiers by CLV rank: a customer ranked ``r`` of ``n`` falls in the first tier
        whose cumulative share ``s`` has ``r <= s n`` (top 1%, 1-5%, 5-10%, 10-25%,
        25-50%, bottom 50%). The last share must be 1.
    grid_shares
        Shares of customers rated ``high``, and ``high`` or ``medium``, on current
        (historic) and potential (CLV) value, by rank.
    engagement_days
        Days since the last interaction within which engagement is ``high``, ``medium``;
        later or never is ``low``.
    rfm_grid
        RFM cells ``(name, R from, R to, F from, F to)`` on quintile scores 1-5; first match wins.
    service_priority
        Priority (1 first) of each value tier, in the order of ``tier_names``.
    retention_offer_share
        A retention offer may cost at most this share of the customer's CLV (floored at 0).
    acquisition_cost_share
        Allowable acquisition cost: this share of the mean CLV of customers acquired in a
        channel and segment.
    """

    horizon_months: int = 12
    tier_names: tuple[str, ...] = ("top_1", "top_1_5", "top_5_10", "top_10_25", "top_25_50", "bottom_50")
    tier_shares: tuple[float, ...] = (0.01, 0.05, 0.10, 0.25, 0.50, 1.0)
    grid_shares: tuple[float, float] = (0.2, 0.5)
    engagement_days: tuple[int, int] = (90, 365)
    rfm_grid: tuple[tuple[str, int, int, int, int], ...] = DEFAULT_RFM_GRID
    service_priority: tuple[int, ...] = (1, 1, 2, 2, 3, 4)
    retention_offer_share: float = 0.2
    acquisition_cost_share: float = 0.3


@dataclass(frozen=True)
class AudienceDefinition:
    """One named audience: a filter over segments, scores and features.

    ``where`` holds conditions ``(column, operator, value)``, all of which must hold;
    :mod:`patron.audiences` checks columns and operators against a whitelist and never
    evaluates text. ``market`` keeps customers of one market, ``horizon_months`` picks
    the CLV horizon of the ``clv`` column, ``action`` is the next best action exports carry.
    """

    name: str
    description: str = ""
    where: tuple[tuple[Any, ...], ...] = ()
    market: str | None = None
    horizon_months: int | None = None
    action: str | None = None


#: The playbook audiences shipped with patron (see docs/segments-and-audiences.md).
PLAYBOOK_AUDIENCES: tuple[AudienceDefinition, ...] = (
    AudienceDefinition(
        "winback_high_value", "Top-25% customers by CLV who are lapsing or lapsed: win them back.",
        (("value_tier", "in", ("top_1", "top_1_5", "top_5_10", "top_10_25")),
         ("lifecycle_stage", "in", ("lapsing", "lapsed"))), action="win_back"),
    AudienceDefinition(
        "discount_suppression", "Bottom-50% customers by CLV: leave them out of discount campaigns.",
        (("value_tier", "=", "bottom_50"),), action="no_discount"),
    AudienceDefinition(
        "retention_offer", "Customers above the median CLV with churn risk of 50% or more; offer capped by CLV.",
        (("value_tier", "not in", ("bottom_50",)), ("churn_risk", ">=", 0.5)), action="retention_offer"),
    AudienceDefinition(
        "vip_service", "Service priority 1 (top 5% by CLV): first in line at contact centres and stores.",
        (("service_priority", "=", 1),), action="priority_service"),
    AudienceDefinition(
        "value_lookalike_seed", "Top-10% customers by CLV, with their value, to seed value-based lookalikes.",
        (("value_tier", "in", ("top_1", "top_1_5", "top_5_10")),), action="lookalike_seed"),
)


@dataclass(frozen=True)
class PrivacySettings:
    """Pseudonymisation at ingest (the ``[privacy]`` section of ``patron.toml``; see docs/privacy.md).

    Attributes
    ----------
    hash_personal_data
        Store e-mail, phone, names, postcode and loyalty id as keyed hashes (HMAC-SHA-256 of
        the normalised value) instead of in clear (False).
    key_env
        Name of the environment variable holding the hashing key; the key itself never
        goes into ``patron.toml`` or the repository (``"PATRON_PII_KEY"``).
    """

    hash_personal_data: bool = False
    key_env: str = "PATRON_PII_KEY"


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
    segments: SegmentSettings = field(default_factory=SegmentSettings)
    audiences: tuple[AudienceDefinition, ...] = PLAYBOOK_AUDIENCES
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

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
        segments=_segments(_section(data, "segments"), model),
        audiences=_audiences(data.get("audiences", [])),
        privacy=_privacy(_section(data, "privacy")),
    )


def _privacy(values: dict[str, Any]) -> PrivacySettings:
    privacy = _build(PrivacySettings, values, "privacy")
    if not isinstance(privacy.hash_personal_data, bool):
        raise ConfigError(f"{CONFIG_NAME}: [privacy] hash_personal_data must be true or false")
    if not (isinstance(privacy.key_env, str) and privacy.key_env.strip()):
        raise ConfigError(f"{CONFIG_NAME}: [privacy] key_env must name an environment variable")
    return privacy


def _segments(values: dict[str, Any], model: ModelSettings) -> SegmentSettings:
    values = dict(values)
    for name in ("tier_names", "tier_shares", "grid_shares", "engagement_days", "service_priority"):
        if name in values:
            values[name] = tuple(values[name])
    if "rfm_grid" in values:
        values["rfm_grid"] = tuple(tuple(cell) for cell in values["rfm_grid"])
    seg = _build(SegmentSettings, values, "segments")
    where = f"{CONFIG_NAME}: [segments]"
    if seg.horizon_months not in model.horizons_months:
        raise ConfigError(f"{where} horizon_months must be one of [model] horizons_months {model.horizons_months}")
    shares = seg.tier_shares
    if len(seg.tier_names) != len(shares) or len(set(seg.tier_names)) != len(shares):
        raise ConfigError(f"{where} tier_names must be distinct and as many as tier_shares")
    if not shares or any(b <= a for a, b in pairwise(shares)) or shares[0] <= 0 or shares[-1] != 1:
        raise ConfigError(f"{where} tier_shares must rise strictly from above 0 to 1")
    if len(seg.service_priority) != len(shares):
        raise ConfigError(f"{where} service_priority needs one priority per tier")
    low, high = seg.grid_shares if len(seg.grid_shares) == 2 else (0.0, 0.0)
    if not 0 < low < high < 1:
        raise ConfigError(f"{where} grid_shares must be two shares 0 < high < high + medium < 1")
    if len(seg.engagement_days) != 2 or not 0 <= seg.engagement_days[0] <= seg.engagement_days[1]:
        raise ConfigError(f"{where} engagement_days must be two day counts, the first not above the second")
    for cell in seg.rfm_grid:
        if (len(cell) != 5 or not isinstance(cell[0], str)
                or not all(isinstance(v, int) and 1 <= v <= 5 for v in cell[1:])):
            raise ConfigError(f"{where} rfm_grid cells are [name, R from, R to, F from, F to] with scores 1-5")
    if seg.retention_offer_share < 0 or seg.acquisition_cost_share < 0:
        raise ConfigError(f"{where} retention_offer_share and acquisition_cost_share must not be negative")
    return seg


def _audiences(entries: Any) -> tuple[AudienceDefinition, ...]:
    """The shipped playbook audiences, then ``[[audiences]]``; a defined name replaces a shipped one."""
    if not isinstance(entries, list):
        raise ConfigError(f"{CONFIG_NAME}: audiences must be an array of tables ([[audiences]])")
    defined: dict[str, AudienceDefinition] = {a.name: a for a in PLAYBOOK_AUDIENCES}
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{CONFIG_NAME}: every [[audiences]] entry needs a name")
        values = dict(entry)
        name = values["name"]
        if name in seen:
            raise ConfigError(f"{CONFIG_NAME}: audience {name!r} is defined twice")
        seen.add(name)
        where = values.get("where", [])
        if not isinstance(where, list) or not all(isinstance(c, list) for c in where):
            raise ConfigError(f"{CONFIG_NAME}: audience {name!r}: where must be a list of [column, operator, value]")
        values["where"] = tuple(tuple(tuple(v) if isinstance(v, list) else v for v in c) for c in where)
        defined[name] = _build(AudienceDefinition, values, f"audiences {name}")
    return tuple(defined.values())


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
