"""The names of every table patron keeps in the warehouse, and which command writes each.

One place for the strings, so a step, the service and a message agree on them. The contract's
input tables (orders, order_lines, customers...) are named by ``patron.contract``'s
``TableContract.name``.
"""

from __future__ import annotations

# -- ingest and data quality ------------------------------------------------------
REJECTS = "rejects"
INGEST_LOG = "ingest_log"
QUALITY_REPORT = "quality_report"

# -- identity -------------------------------------------------------------------
IDENTITY_MAP = "identity_map"
ORDER_KEYS = "order_keys"

# -- engine transforms ----------------------------------------------------------
ORDER_VALUES = "order_values"
ORDER_EVENTS = "order_events"
RFM = "rfm"
RFM_HISTOGRAM = "rfm_histogram"
SEASONALITY = "seasonality"
CAR = "car"

# -- models and scores ----------------------------------------------------------
BACKTESTS = "backtests"
MODELS = "models"
SCORES = "scores"

# -- activation ------------------------------------------------------------------
SEGMENTS = "segments"

# -- governance ------------------------------------------------------------------
ERASURE_LOG = "erasure_log"
ERASURE_SALT = "erasure_salt"

#: The command that writes each table the pipeline makes, for "run X first" messages.
WRITTEN_BY: dict[str, str] = {
    "orders": "patron ingest", "order_lines": "patron ingest", IDENTITY_MAP: "patron resolve",
    ORDER_KEYS: "patron resolve", ORDER_VALUES: "patron rfm", RFM: "patron rfm",
    RFM_HISTOGRAM: "patron rfm", CAR: "patron features", BACKTESTS: "patron backtest",
    MODELS: "patron fit", SCORES: "patron score", SEGMENTS: "patron segments",
}
