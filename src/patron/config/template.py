"""The default ``patron.toml``: its commented text, and writing it for ``patron init``."""

from __future__ import annotations

from pathlib import Path

from patron.config.settings import CONFIG_NAME, ENGINES
from patron.errors import ConfigError

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

# `patron run`: the whole pipeline in one command, safe to schedule daily (see docs/running.md).
[run]
backtest_every_days = 30     # run the backtest when the latest is older than this (0: every run)
# [[run.exports]]            # audience files each run writes (formats: google, meta, crm, csv)
# audience = "winback_high_value"
# format = "crm"
# out = "exports/winback_high_value.csv"   # relative to this folder
# market = "DE"                # optional: one market only

[serve]
online_store = "embedded"    # "embedded" (SQLite files in the serving folder, no server) or "redis"
# redis_url = "redis://127.0.0.1:6379/0"   # with online_store = "redis"; several service replicas share it
dir = "serving"              # published serving versions (patron publish), relative to this folder
keep = 3                     # serving versions a publish keeps
max_body_bytes = 1048576     # larger request bodies get 413 unread
rate_per_second = 0          # requests per second per API key, 0: no limit (over it: 429)

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
