"""Settings: what ``patron.toml`` holds, read once and passed down as one object."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from patron.errors import ConfigError

CONFIG_NAME = "patron.toml"
ENGINES = ("duckdb", "spark")
TIME_UNITS = {"day": 1, "week": 7}
#: The purchase models, by the one name used everywhere: patron.toml, ``patron fit --model``,
#: the backtest and its ``backtests`` table (classes: :data:`patron.scoring.model_store.PURCHASE_MODELS`).
PURCHASE_MODEL_NAMES = ("bg_nbd", "pareto_nbd", "mbg_nbd")
#: Earlier spellings (the class names), still accepted in patron.toml and by ``--model``.
PURCHASE_MODEL_ALIASES = {"BetaGeo": "bg_nbd", "ParetoNBD": "pareto_nbd", "ModifiedBetaGeo": "mbg_nbd"}


def purchase_model_name(name: str) -> str:
    """The purchase model's name (``bg_nbd``, ``pareto_nbd``, ``mbg_nbd``) from any accepted spelling.

    Takes the names themselves in any case, with ``-`` or ``/`` for ``_`` (``BG/NBD``), and
    the class names of :data:`PURCHASE_MODEL_ALIASES`.

    Raises
    ------
    ConfigError
        Naming the accepted spellings.
    """
    if name in PURCHASE_MODEL_ALIASES:
        return PURCHASE_MODEL_ALIASES[name]
    folded = str(name).strip().lower().replace("-", "_").replace("/", "_")
    if folded in PURCHASE_MODEL_NAMES:
        return folded
    raise ConfigError(f"purchase_model must be one of {', '.join(PURCHASE_MODEL_NAMES)} "
                      f"(or {', '.join(PURCHASE_MODEL_ALIASES)}), not {name!r}")


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
purchase_model = "bg_nbd"    # bg_nbd, pareto_nbd or mbg_nbd; `patron fit` prefers the last backtest's champion
seasonality = "auto"         # "auto": a seasonal clock estimated from >= 2 years of orders; "off": the calendar
# observation_end = "2025-12-31"   # default: the day after the last order

[quality]
max_null_rate = 0.05         # share of nulls allowed in a required-by-analysis column
max_duplicate_order_rate = 0.0
spend_outlier_z = 6.0        # order value this many robust deviations above the median
max_outlier_rate = 0.01
max_orders_without_lines_rate = 0.001
future_tolerance_days = 1    # an order or event later than now + this many days is refused

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

# Sources: map your own exports to the data contract, without code (see docs/mapping.md).
# `patron ingest` with no path loads every source; `patron init --from FILE` proposes one.
# [[sources]]
# name = "webshop"             # also the orders' `source` column unless mapped
# path = "exports/online_retail.csv"   # a file or a folder, relative to this folder
# # engine_table = "sales.orders_export"   # ...or a table the engine reads (Spark catalog, DuckDB)
# layout = "transactions"      # one row per order line, split into orders and order_lines
# # table = "customers"        # ...or load one contract table
# delimiter = ","              # one character, or "whitespace" for runs of blanks
# encoding = "utf-8"
# skip_rows = 0                # lines above the header
# decimal = "."                # "." or ","
# thousands = ""               # "", ",", ".", " " or "'"
# date_format = "day_first"    # a strftime pattern, "day_first" or "month_first"; default: detected
# time_zone = "Europe/London"  # of timestamps written without one (default UTC)
# unmapped = "keep"            # values a value map lacks: "keep", "null" or "reject"
# exclude = [["InvoiceNo", "starts with", "C"], ["Quantity", "<", 0]]
# [sources.columns]            # contract column = column of the file
# order_id = "InvoiceNo"
# customer_id = "CustomerID"
# [sources.constants]          # contract column = the same value on every row
# currency = "GBP"
# channel = "online"
# [sources.values]             # contract column = a value map, or the name of a shipped one
# country = "country_names"
# # channel = { web = "online", shop = "store" }
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
    """Thresholds of the data-quality checks.

    ``future_tolerance_days``: how far past the clock (now, UTC) an order or event may be
    dated, for clocks that differ a little; later ones are refused by the service (422),
    flagged by ``patron validate`` (``future_orders``) and never move the observation end.
    """

    max_null_rate: float = 0.05
    max_duplicate_order_rate: float = 0.0
    spend_outlier_z: float = 6.0
    max_outlier_rate: float = 0.01
    max_orders_without_lines_rate: float = 0.001
    future_tolerance_days: float = 1.0


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


#: ``[model] seasonality``: estimate a seasonal clock from the data, or keep the calendar.
SEASONALITY_MODES = ("auto", "off")


@dataclass(frozen=True)
class ModelSettings:
    """Time unit, horizons and discounting of the value models."""

    time_unit: str = "week"
    horizons_months: tuple[int, ...] = (3, 12, 36)
    annual_discount_rate: float = 0.10
    value: str = "gp2"
    observation_end: str | None = None
    holdout_months: int = 12
    purchase_model: str = "bg_nbd"
    #: "auto": recency, age and horizons on a month-of-year seasonal clock per market, estimated
    #: from the data (calendar when under two years; docs/accuracy.md); "off": the calendar.
    seasonality: str = "auto"

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
    :mod:`patron.activation.audiences` checks columns and operators against a whitelist and never
    evaluates text. ``market`` keeps customers of one market, ``horizon_months`` picks
    the CLV horizon of the ``clv`` column, ``action`` is the next best action exports carry.
    """

    name: str
    description: str = ""
    where: tuple[tuple[Any, ...], ...] = ()
    market: str | None = None
    horizon_months: int | None = None
    action: str | None = None


#: Retention offers go to this share of the customers above the median CLV who are neither
#: lapsing nor lapsed: those with the highest churn risk (a share, not a risk threshold: the
#: risk of no order within the shortest horizon is above 0.5 for almost every retail customer).
RETENTION_SHARE = 0.2

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
        "retention_offer", "The 20% with the highest churn risk of the customers above the median CLV who are "
        "neither lapsing nor lapsed; offer capped by CLV.",
        (("value_tier", "not in", ("bottom_50",)), ("lifecycle_stage", "not in", ("lapsing", "lapsed")),
         ("churn_risk", "top share", RETENTION_SHARE)), action="retention_offer"),
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


LAYOUTS = ("transactions",)
SHIPPED_VALUE_MAPS = ("country_names",)
EXCLUDE_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "starts with", "ends with",
                     "contains", "is empty", "is not empty")
UNMAPPED_POLICIES = ("keep", "null", "reject")
DATE_READINGS = ("day_first", "month_first")
#: Extra columns a flat transaction log may map besides the orders and order_lines columns.
TRANSACTION_EXTRAS = ("amount",)


@dataclass(frozen=True)
class SourceMapping:
    """How one export maps to the data contract (a ``[[sources]]`` entry; see docs/mapping.md).

    Attributes
    ----------
    name
        The source's name; also the value of the contract's ``source`` column unless mapped.
    path
        A file, or a folder whose every readable file belongs to this source, relative to the
        project folder.
    table, layout
        The contract table the file feeds, or ``"transactions"``: a flat log of order lines
        split into ``orders`` and ``order_lines``. Exactly one is set.
    delimiter, encoding, sheet, skip_rows
        How to read the file (``delimiter = "whitespace"``: runs of blanks separate fields).
    decimal, thousands
        Number spellings of numeric columns (``decimal = ","``, ``thousands = "."``: ``1.234,56``).
    date_format
        A strftime pattern, ``"day_first"`` or ``"month_first"``; None: ISO, else detected.
    time_zone
        IANA zone of timestamps written without one; they are converted to UTC.
    columns, constants, values
        Contract column → file column; → a constant; → a value map (a table of file value →
        contract value, or the name of a shipped map such as ``"country_names"``).
    unmapped
        What happens to a value a value map lacks: ``keep`` it, make it ``null``, or ``reject`` the row.
    exclude
        Row filters ``(file column, operator, value)``; a row matching any is not loaded and goes
        to ``rejects`` as excluded by the rule.
    engine_table
        Instead of ``path``: a table or view the project's engine reads, such as a Spark
        catalog table (``sales.orders_export`` on Databricks) or a table of the DuckDB
        warehouse file. Its rows are mapped as a file's would be (line = row number).
    """

    name: str
    path: str = ""
    table: str | None = None
    layout: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    skip_rows: int = 0
    decimal: str = "."
    thousands: str = ""
    date_format: str | None = None
    time_zone: str = "UTC"
    columns: dict[str, str] = field(default_factory=dict, hash=False)
    constants: dict[str, str] = field(default_factory=dict, hash=False)
    values: dict[str, dict[str, str] | str] = field(default_factory=dict, hash=False)
    unmapped: str = "keep"
    exclude: tuple[tuple[Any, ...], ...] = ()
    engine_table: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """The contract tables this source feeds."""
        return ("orders", "order_lines") if self.layout == "transactions" else (str(self.table),)

    def resolved_path(self, project_dir: Path) -> Path:
        return project_dir / self.path


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
    sources: tuple[SourceMapping, ...] = ()

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
    try:
        model = replace(model, purchase_model=purchase_model_name(model.purchase_model))
    except ConfigError as exc:
        raise ConfigError(f"{CONFIG_NAME}: [model] {exc}") from exc
    if model.holdout_months <= 0:
        raise ConfigError(f"{CONFIG_NAME}: [model] holdout_months must be positive")
    if model.seasonality not in SEASONALITY_MODES:
        raise ConfigError(f"{CONFIG_NAME}: [model] seasonality must be one of {SEASONALITY_MODES}, "
                          f"not {model.seasonality!r}")
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
        quality=_quality(_section(data, "quality")),
        identity=_identity(_section(data, "identity")),
        segments=_segments(_section(data, "segments"), model),
        audiences=_audiences(data.get("audiences", [])),
        privacy=_privacy(_section(data, "privacy")),
        sources=_sources(data.get("sources", [])),
    )


def _quality(values: dict[str, Any]) -> QualitySettings:
    quality = _build(QualitySettings, values, "quality")
    tolerance = quality.future_tolerance_days
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 366:
        raise ConfigError(f"{CONFIG_NAME}: [quality] future_tolerance_days must be a number of days from 0 to 366")
    return quality


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


def _sources(entries: Any) -> tuple[SourceMapping, ...]:
    """``[[sources]]``, each checked against the data contract; names must be distinct."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{CONFIG_NAME}: sources must be an array of tables ([[sources]])")
    sources = [_source(entry, i) for i, entry in enumerate(entries, start=1)]
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{CONFIG_NAME}: source {twice[0]!r} is defined twice")
    return tuple(sources)


def _source(entry: dict[str, Any], number: int) -> SourceMapping:
    from patron.contract import CONTRACT  # contract imports ibis; settings alone should not

    name = entry.get("name")
    if not (isinstance(name, str) and name.strip()):
        raise ConfigError(f"{CONFIG_NAME}: [[sources]] entry {number} needs a name")
    where = f"{CONFIG_NAME}: source {name!r}:"
    values = dict(entry)

    def fail(key: str, rule: str) -> ConfigError:
        return ConfigError(f"{where} {key} {rule}")

    for key in ("columns", "constants", "values"):
        if not isinstance(values.get(key, {}), dict):
            raise fail(key, f"must be a table ([sources.{key}])")
    exclude = values.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(r, list) for r in exclude):
        raise fail("exclude", "must be a list of [column, operator, value]")
    values["exclude"] = tuple(tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in exclude)
    values["constants"] = {k: _constant_text(v, where, k) for k, v in values.get("constants", {}).items()}
    source = _build(SourceMapping, values, f"sources {name}")
    has_path = isinstance(source.path, str) and bool(source.path.strip())
    if has_path == (source.engine_table is not None):
        raise ConfigError(f"{where} set either path (a file or folder) or engine_table (a table the engine reads)")
    if source.engine_table is not None and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}",
                                                            str(source.engine_table)):
        raise fail("engine_table", f"must be a table name such as sales.orders_export, not {source.engine_table!r}")
    if (source.table is None) == (source.layout is None):
        raise ConfigError(f"{where} set either table (a contract table) or layout = \"transactions\"")
    if source.layout is not None and source.layout not in LAYOUTS:
        raise fail("layout", f"must be one of {LAYOUTS}, not {source.layout!r}")
    if source.table is not None and source.table not in CONTRACT:
        raise fail("table", f"must be a contract table ({', '.join(sorted(CONTRACT))}), not {source.table!r}")
    known = {c for t in source.tables for c in CONTRACT[t].column_names}
    if source.layout == "transactions":
        known |= set(TRANSACTION_EXTRAS)
    for key in ("columns", "constants", "values"):
        for column, value in getattr(source, key).items():
            if column not in known:
                raise fail(f"[sources.{key}] {column}", f"is not a column of {' or '.join(source.tables)}")
            if key == "columns" and not (isinstance(value, str) and value.strip()):
                raise fail(f"[sources.columns] {column}", "must name a column of the file")
            if key == "values" and not (value in SHIPPED_VALUE_MAPS or isinstance(value, dict)):
                raise fail(f"[sources.values] {column}",
                           f"must be a table of value = value or one of {SHIPPED_VALUE_MAPS}")
            if key == "values" and isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
                raise fail(f"[sources.values] {column}", "must map values to text")
    both = sorted(set(source.columns) & set(source.constants))
    if both:
        raise fail(both[0], "is both in [sources.columns] and [sources.constants]")
    if {"unit_price", "amount"} <= set(source.columns) | set(source.constants):
        raise fail("columns", "map unit_price or amount, not both")
    _check_format(source, fail)
    for rule in source.exclude:
        _check_rule(rule, fail)
    return source


def _constant_text(value: Any, where: str, column: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where} [sources.constants] {column} must be text, a number or true/false")


def _check_format(source: SourceMapping, fail: Any) -> None:
    import codecs
    import zoneinfo

    delimiter = source.delimiter
    if delimiter is not None and not (isinstance(delimiter, str)
                                      and (len(delimiter) == 1 or delimiter == "whitespace")):
        raise fail("delimiter", 'must be one character or "whitespace"')
    if source.encoding is not None:
        try:
            codecs.lookup(str(source.encoding))
        except LookupError:
            raise fail("encoding", f"{source.encoding!r} is not a known encoding") from None
    if source.sheet is not None and not isinstance(source.sheet, str | int):
        raise fail("sheet", "must be a sheet name or number")
    if not isinstance(source.skip_rows, int) or isinstance(source.skip_rows, bool) or source.skip_rows < 0:
        raise fail("skip_rows", "must be a whole number, 0 or more")
    if source.decimal not in (".", ","):
        raise fail("decimal", 'must be "." or ","')
    if source.thousands not in ("", ",", ".", " ", "'"):
        raise fail("thousands", 'must be "", ",", ".", " " or "\'"')
    if source.thousands == source.decimal:
        raise fail("thousands", "must differ from decimal")
    date_format = source.date_format
    if date_format is not None and not (
            date_format in DATE_READINGS or (isinstance(date_format, str) and "%" in date_format)):
        raise fail("date_format", f"must be a strftime pattern (\"%d/%m/%Y %H:%M\") or one of {DATE_READINGS}")
    try:
        zoneinfo.ZoneInfo(str(source.time_zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise fail("time_zone", f"{source.time_zone!r} is not an IANA time zone (\"Europe/London\")") from None
    if source.unmapped not in UNMAPPED_POLICIES:
        raise fail("unmapped", f"must be one of {UNMAPPED_POLICIES}")


def _check_rule(rule: tuple[Any, ...], fail: Any) -> None:
    shown = list(rule)
    if len(rule) < 2 or not isinstance(rule[0], str) or rule[1] not in EXCLUDE_OPERATORS:
        raise fail("exclude", f"rule {shown} must be [file column, operator, value]; operators: "
                   + ", ".join(EXCLUDE_OPERATORS))
    unary = rule[1] in ("is empty", "is not empty")
    if len(rule) != (2 if unary else 3):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes {'no value' if unary else 'one value'}")
    if rule[1] in ("in", "not in") and not isinstance(rule[2], tuple):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes a list of values")
    if rule[1] in ("<", "<=", ">", ">=") and (isinstance(rule[2], bool) or not isinstance(rule[2], int | float)):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes a number")


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


def write_default_config(project_dir: Path, *, engine: str = "duckdb", sources: str = "") -> Path:
    """Write a commented ``patron.toml``; refuses to overwrite an existing one.

    ``sources`` (TOML text of ``[[sources]]`` entries, such as a proposed mapping) is appended.
    """
    path = project_dir / CONFIG_NAME
    if path.exists():
        raise ConfigError(f"{path} exists already")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
    text = DEFAULT_TOML.replace('engine = "duckdb"', f'engine = "{engine}"', 1)
    if sources:
        text += "\n" + sources.rstrip("\n") + "\n"
    project_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
