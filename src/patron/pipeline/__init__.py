"""The pipeline: the one package that chains patron's steps.

Interfaces (CLI, API) call these functions and render what they return; every step
opens the warehouse named by the project's settings, runs engine-neutral transforms
and writes its tables. Progress goes to an optional ``Reporter`` so that the CLI can
show bars while library users stay quiet. One module per job:

- :mod:`~patron.pipeline.project`: ``Reporter``, ``open_warehouse``, ``init_project`` and API keys;
- :mod:`~patron.pipeline.data`: generate, ingest, validate, resolve and summarise;
- :mod:`~patron.pipeline.modelling`: features, backtest, fit, score and CLV deciles;
- :mod:`~patron.pipeline.activation`: segments, audiences, exports and erasure;
- :mod:`~patron.pipeline.run`: ``patron run``, every step from ``patron.toml`` in order, one run at a time;
- :mod:`~patron.pipeline.reporting`: ``patron report``, the workbook and the HTML report;
- :mod:`~patron.pipeline.demo`: every step on a generated retailer, and the summary charts.

Import the steps from here (``from patron import pipeline; pipeline.score(settings)``).
"""

from patron.pipeline.activation import audiences, erase, export_audience, export_table, segments
from patron.pipeline.data import (
    ResolveResult,
    SummaryResult,
    expand_paths,
    generate,
    ingest,
    require_quality,
    resolve,
    summarise,
    validate,
)
from patron.pipeline.demo import (
    DemoResult,
    draw_charts,
    frequency_distribution,
    monthly_activity,
    reset_warehouse,
    run_demo,
)
from patron.pipeline.modelling import (
    BacktestRun,
    FeaturesResult,
    ScoreRun,
    backtest,
    clv_deciles,
    features,
    fit,
    score,
)
from patron.pipeline.project import (
    Reporter,
    api_keys,
    create_api_key,
    init_project,
    open_warehouse,
    revoke_api_key,
)
from patron.pipeline.publishing import publish
from patron.pipeline.reporting import ReportResult, report, report_data
from patron.pipeline.run import STEPS, RunResult, StepOutcome, run

__all__ = [
    "STEPS",
    "BacktestRun",
    "DemoResult",
    "FeaturesResult",
    "ReportResult",
    "Reporter",
    "ResolveResult",
    "RunResult",
    "ScoreRun",
    "StepOutcome",
    "SummaryResult",
    "api_keys",
    "audiences",
    "backtest",
    "clv_deciles",
    "create_api_key",
    "draw_charts",
    "erase",
    "expand_paths",
    "export_audience",
    "export_table",
    "features",
    "fit",
    "frequency_distribution",
    "generate",
    "ingest",
    "init_project",
    "monthly_activity",
    "open_warehouse",
    "publish",
    "report",
    "report_data",
    "require_quality",
    "reset_warehouse",
    "resolve",
    "revoke_api_key",
    "run",
    "run_demo",
    "score",
    "segments",
    "summarise",
    "validate",
]
