"""The settings dataclasses: what each section of ``patron.toml`` holds, with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from patron.config.audiences import PLAYBOOK_AUDIENCES, AudienceDefinition
from patron.config.sources import SourceMapping
from patron.errors import ConfigError

#: The settings file of a project; every command runs in the folder holding it.
CONFIG_NAME = "patron.toml"
#: The engines a warehouse can run on (``engine = ...``).
ENGINES = ("duckdb", "spark")
#: ``[model] time_unit``: days per unit of frequency, recency and age.
TIME_UNITS = {"day": 1, "week": 7}


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
        """Days per model time unit (7 for weeks)."""
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



#: The formats an audience file may take (``patron audiences export --format``).
EXPORT_FORMATS = ("google", "meta", "crm", "csv")


@dataclass(frozen=True)
class ScheduledExport:
    """An audience file ``patron run`` writes each time (``[[run.exports]]``)."""

    audience: str
    format: str = "csv"
    out: str = ""  # relative to the project folder; default exports/<audience>_<format>.csv
    market: str | None = None

    def path(self, project_dir: Path) -> Path:
        """Where the file goes."""
        return project_dir / (self.out or f"exports/{self.audience}_{self.format}.csv")


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: what ``patron run`` does besides the steps every run takes."""

    backtest_every_days: int = 30  # run the backtest when the latest one is older (0: every run)
    exports: tuple[ScheduledExport, ...] = ()


ONLINE_STORES = ("embedded", "redis")


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]``: the serving layer ``patron publish`` writes and ``patron serve`` reads."""

    online_store: str = "embedded"  # "embedded" (SQLite files in the serving folder) or "redis"
    redis_url: str = "redis://127.0.0.1:6379/0"  # the Redis server, with online_store = "redis"
    redis_prefix: str = "patron"  # the keys' prefix, so several projects can share one server
    dir: str = "serving"  # the serving folder, relative to the project folder
    keep: int = 3  # serving versions kept by a publish (the newest; readers of older ones finish first)
    reload_seconds: float = 1.0  # how often the service looks for a new version
    max_body_bytes: int = 1_048_576  # larger request bodies get 413 unread
    rate_per_second: float = 0.0  # requests per second per API key (0: no limit); over it 429
    rate_burst: int = 0  # requests a key may send at once above the rate (0: one second's worth)
    workers: int = 1  # uvicorn worker processes of `patron serve` (--workers overrides)


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
    run: RunSettings = field(default_factory=RunSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file, in the project folder."""
        return self.project_dir / self.duckdb_path

    @property
    def serving_dir(self) -> Path:
        """The serving folder: published versions, the pointer to the current one, the embedded online store."""
        return self.project_dir / self.serve.dir

    @property
    def spark_warehouse_dir(self) -> Path:
        """Spark's warehouse folder, in the project folder."""
        return self.project_dir / self.spark.warehouse_dir

    def with_engine(self, engine: str) -> Settings:
        """These settings on another engine (``--engine`` on the command line); refuses an unknown one."""
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
        return replace(self, engine=engine)

