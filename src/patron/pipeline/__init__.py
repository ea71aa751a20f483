"""The pipeline: the one package that chains patron's steps.

Interfaces (CLI, API) call these functions and render what they return; every step
opens the warehouse named by the project's settings, runs engine-neutral transforms
and writes its tables. Progress goes to an optional ``Reporter`` so that the CLI can
show bars while library users stay quiet. ``steps`` holds the steps, ``demo`` chains
them on a generated retailer.
"""

from patron.pipeline.demo import (
    DemoResult,
    draw_charts,
    frequency_distribution,
    monthly_activity,
    reset_warehouse,
    run_demo,
)
from patron.pipeline.steps import (
    BacktestRun,
    FeaturesResult,
    Reporter,
    ResolveResult,
    ScoreRun,
    SummaryResult,
    api_keys,
    audiences,
    backtest,
    clv_deciles,
    create_api_key,
    erase,
    expand_paths,
    export_audience,
    export_table,
    features,
    fit,
    generate,
    ingest,
    init_project,
    open_warehouse,
    require_quality,
    resolve,
    revoke_api_key,
    score,
    segments,
    summarise,
    validate,
)
from patron.tables import CAR, IDENTITY_MAP, ORDER_KEYS, ORDER_VALUES, RFM, RFM_HISTOGRAM, SEGMENTS

__all__ = [
    "CAR", "IDENTITY_MAP", "ORDER_KEYS", "ORDER_VALUES", "RFM", "RFM_HISTOGRAM", "SEGMENTS", "BacktestRun",
    "DemoResult", "FeaturesResult", "Reporter", "ResolveResult", "ScoreRun", "SummaryResult", "api_keys",
    "audiences", "backtest", "clv_deciles", "create_api_key", "draw_charts", "erase", "expand_paths",
    "export_audience", "export_table", "features", "fit", "frequency_distribution", "generate", "ingest",
    "init_project", "monthly_activity", "open_warehouse", "require_quality",
    "reset_warehouse", "resolve", "revoke_api_key", "run_demo", "score", "segments", "summarise", "validate",
]
